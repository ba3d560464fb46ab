"""Due dates and the late-submission penalty.

The due date of an assignment is a course setting (course.toml ``[due]``); before grading,
``course.gradebook.apply_due_date`` writes it into the gradebook, where nbgrader compares it with each
submission's ``timestamp.txt`` (written by ``course collect``). nbgrader's
AssignLatePenalties step then asks the plugin configured in nbgrader_config.py for the
penalty: ``LatePenaltyPerDay`` below, a knob there (0 % per day by default: late work is
reported, never penalised, until the instructor decides otherwise).
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

DAY = 24 * 3600


class LatePenaltyPerDay(LateSubmissionPlugin):
    """Take ``percent_per_day`` of the autograded score for every started day of lateness."""

    percent_per_day = Float(
        0.0, help="percent of the notebook's score taken per started day late (100: late work scores 0)"
    ).tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        if total_seconds_late <= 0 or self.percent_per_day <= 0:
            return None
        days = math.ceil(total_seconds_late / DAY)
        return min(score, score * self.percent_per_day / 100 * days)
