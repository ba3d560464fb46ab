"""``course feedback``: write the feedback pages and grades.csv again from the gradebook.

Grading writes a submission's pages as soon as it is recorded (course/commands/grade.py).
After teaching assistants have graded written answers in the formgrader, this writes the
pages again, with their points and comments.
"""

from __future__ import annotations

from ..config import LAYOUT
from ..gradebook import read
from ..plugins.feedback import write_pages


def write_feedback(assignment: str, who: list[str]) -> list[str]:
    """Write the pages of these students' recorded submissions; returns who got pages."""
    done = []
    for student in who:
        if LAYOUT.graded(student, assignment).is_dir() and read(assignment, student) is not None:
            write_pages(assignment, student)
            done.append(student)
    return done
