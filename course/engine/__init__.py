"""The grading engine: a Job in, a Result out, recorded by one writer.

The worker's side (may run on another machine): ``scratch`` (the folder the kernel runs in),
``prepare`` (check a submission, put the registered cells back, add the guards), ``worker``
(run it in the ``sandbox``, read the result), ``launch`` (the runner, started before the
submission is read, then handed the notebooks), ``run_notebook`` and ``execute`` (inside the
sandbox: the kernel, a dying cell costing one cell), ``guards`` (tamper evidence),
``repair`` (metadata an editor stripped, locked cells a submission deleted).

The parent's side: ``plan`` (what to grade, the gradebook ready), ``pool`` (runs the
workers' steps, here or on a Dask cluster), ``recording`` (the single writer of the
gradebook and ``autograded/``) with ``settle`` (each grade's receipt, review decision and
evidence), ``staging`` (grading into a copy of the records: ``course regrade`` and
``course verify``). ``jobs`` holds the values that cross between the two,
``stamps`` the content hashes that decide what is up to date.
"""
