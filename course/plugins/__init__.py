"""The course's steps inside nbgrader's pipelines (configured in nbgrader_config.py).

``colab`` and ``rubric`` (releasing: the Colab cells; rubric cells out of the student
version and into the graders' view), ``bonus`` and ``late`` (autograding: extra credit, the
late penalty), ``feedback`` and ``feedback_page`` (the pages students get back). The course's
grader runs the same steps itself (course/engine/recording.py, ``feedback.write_pages``);
nbgrader's execution step with a dying kernel costing one cell is
course/engine/execute.py's ``ExecuteKeepingScores``.
"""
