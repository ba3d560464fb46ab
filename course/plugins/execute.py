"""nbgrader's own execution step, keeping the scores before a dying kernel (nbgrader_config.py).

The course grades with its own executor in the sandbox (course/engine/execute.py); this puts
the same behaviour (a dying or stuck kernel costs one cell, the deadline) into nbgrader's
``Execute`` for anyone who runs ``nbgrader autograde`` directly. Note that nbgrader's own
autograding runs student code with the rights of whoever starts it: ``course grade`` does not.
"""

from __future__ import annotations

from nbgrader.preprocessors import Execute

from ..engine.execute import KeepScores, end_leftover_processes


class ExecuteKeepingScores(KeepScores, Execute):
    def preprocess(self, nb, resources=None, km=None):
        try:
            return super().preprocess(nb, resources, km)
        finally:
            end_leftover_processes()
