"""Hidden test logic of every assignment, as plain functions that take the student's objects.

One module per assignment (``hidden_tests/<assignment>.py``). A test cell of an instructor
notebook calls them inside its hidden region, in one or two readable lines::

    # Test 2.5
    check_close(...)                      # the visible check, also in the student version
    ### BEGIN HIDDEN TESTS
    from hidden_tests.optimizers import test_adam
    test_adam(Adam)
    ### END HIDDEN TESTS

Contract:

* a test function raises AssertionError with a message that quotes the rule of the sheet
  it checks and says what to look at; any other exception is a bug in the test;
* it judges what the sheet asks, never how the solution was written: it runs the
  student's code next to a reference (``torch.optim``, autograd, a formula) on data chosen
  so that the answers it exists to tell apart really differ;
* later exercises get reference implementations of earlier ones, so one early slip costs
  the points of its own cell only.

Threat: this package is never released. It lives outside ``source/<assignment>/`` (so
nbgrader copies it into neither release/ nor autograded/), is importable where the
instructor notebooks run and where submissions are graded (the course's editable install,
or PYTHONPATH at the course root), and its lines are withheld from feedback like hidden
regions are. ``mutations/`` proves each function both ways: correct variants pass,
plausible mistakes fail.
"""
