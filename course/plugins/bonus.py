"""Bonus tasks: autograded test cells whose points are extra credit.

A bonus test cell is an ordinary autograded test cell worth 0 nbgrader points
whose metadata in the *source* notebook carries ``"course": {"bonus": N}``.
Because it is worth 0 points it does not raise the maximum score. After
nbgrader has saved its grades, this preprocessor (last in Autograde's
pipeline, see nbgrader_config.py) gives a student whose bonus cell passed N
points of extra credit, nbgrader's own field for points above the maximum.

The bonus values are read from source/, never from the submission: students
can edit cell metadata, so a submission's claim of a bonus counts for nothing.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from .. import cells
from ..config import SOURCE
from ..gradebook import open_gradebook


def bonus_points(notebook_path: Path) -> dict[str, float]:
    """grade id -> bonus points, for the bonus cells of a source notebook."""
    nb = nbformat.read(notebook_path, as_version=4)
    return {
        cells.grade_id(cell): cells.bonus(cell)
        for cell in nb.cells
        if cells.bonus(cell) is not None
    }


class AwardBonusPoints(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        source = SOURCE / info["assignment"] / f"{info['notebook']}.ipynb"
        bonus = bonus_points(source) if source.exists() else {}
        if not bonus:
            return nb, resources
        with open_gradebook(info["db_url"]) as gb:
            for cell in nb.cells:
                grade_id = cells.grade_id(cell)
                if grade_id in bonus and cells.is_grade(cell):
                    grade = gb.find_grade(grade_id, info["notebook"], info["assignment"], info["student"])
                    grade.extra_credit = bonus[grade_id] if cells.passed(cell) else 0.0
            gb.db.commit()
        return nb, resources
