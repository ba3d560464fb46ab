"""The parent's side of grading: record one graded submission in the real gradebook.

The gradebook has a single writer, the process that runs ``course grade``. Workers
(course/grading.py ``grade_one``) send back nbgrader's autograded notebook; here it is
validated again, its graded cells are put back to what the gradebook registered
(source, points), and every score is computed anew, so nothing a submission wrote
in its sandbox (a scratch gradebook, forged metadata, extra credit) counts:

* a test cell scores with nbgrader's own rule (``determine_grade``), except that a
  test cell that never ran (the kernel died or exited before it) scores zero;
* extra credit of autograded cells comes only from bonus cells of ``source/``
  (course/bonus.py) that passed; graders' manual scores are kept, as nbgrader does.

Each submission is written in its own transactions right after it finishes, so a
grader killed mid-batch keeps everything recorded before.
"""

from __future__ import annotations

import logging
import warnings

import nbformat
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import OverwriteCells, SaveAutoGrades
from sqlalchemy.exc import SAWarning

from . import bonus
from .config import GRADEBOOK, SOURCE, settings
from .rubric import InsertRubrics

# nbgrader 0.9's gradebook models trip SQLAlchemy warnings about objects outside a session
# while scores are recorded; they say nothing about the grades and only clutter the report.
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.api")

NOT_RUN = "this test cell did not run (the kernel had stopped before it): no points"
log = logging.getLogger("course.gradebook")


def open_gradebook(db=GRADEBOOK) -> Gradebook:
    return Gradebook(f"sqlite:///{db}", settings().course_id)


def notebook_names(assignment: str, db=GRADEBOOK) -> list[str]:
    with open_gradebook(db) as gb:
        return [nb.name for nb in gb.find_assignment(assignment).notebooks]


def _mark_not_run(nb) -> None:
    for cell in nb.cells:
        if (cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)
                and cell.get("execution_count") is None and not any(o.output_type == "error" for o in cell.outputs)):
            cell.outputs.append(nbformat.v4.new_output("error", ename="NotRun", evalue=NOT_RUN, traceback=[NOT_RUN]))


def record(assignment: str, student: str, notebooks: dict[str, object], flagged: bool, timestamp=None,
           db=GRADEBOOK) -> dict[str, object]:
    """Record the graded notebooks (name -> NotebookNode) of one submission; return them as recorded.

    A notebook of the assignment missing from ``notebooks`` scores zero (a limit
    stopped the run before nbgrader wrote it, or the student did not submit it).
    """
    url = f"sqlite:///{db}"
    with open_gradebook(db) as gb:
        gb.update_or_create_student(student)
        if timestamp is not None:
            gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(assignment, student)
    recorded = {}
    for name in notebook_names(assignment, db):
        resources = {"nbgrader": {"db_url": url, "assignment": assignment, "notebook": name, "student": student}}
        extra = {}
        source = SOURCE / assignment / f"{name}.ipynb"
        if source.exists():
            extra = bonus.bonus_points(source)
        nb = notebooks.get(name)
        with open_gradebook(db) as gb:
            submitted = gb.find_submission_notebook(name, assignment, student)
            if nb is None:
                for grade in submitted.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                    if not _is_answer(gb, grade):
                        grade.extra_credit = 0.0
            submitted.flagged = flagged
            gb.db.commit()
        if nb is None:
            continue
        nb, _ = OverwriteCells().preprocess(nb, resources)
        _mark_not_run(nb)
        nb, _ = SaveAutoGrades().preprocess(nb, resources)
        passed = {c.metadata.nbgrader.grade_id: bonus.passed(c)
                  for c in nb.cells if utils.is_grade(c)}
        with open_gradebook(db) as gb:
            for grade in gb.find_submission_notebook(name, assignment, student).grades:
                if grade.cell.name in extra:
                    grade.extra_credit = extra[grade.cell.name] if passed.get(grade.cell.name) else 0.0
                elif not _is_answer(gb, grade):
                    grade.extra_credit = 0.0  # only bonus cells of source/ earn extra credit
            gb.db.commit()
        # The sandbox cannot see source/, so the rubrics for the formgrader are added here.
        nb, _ = InsertRubrics().preprocess(nb, resources)
        recorded[name] = nb
    return recorded


def _is_answer(gb, grade) -> bool:
    """A grade cell that is also an answer cell is scored by a person (manual extra credit kept)."""
    try:
        gb.find_solution_cell(grade.cell.name, grade.cell.notebook.name, grade.cell.notebook.assignment.name)
        return True
    except MissingEntry:
        return False

