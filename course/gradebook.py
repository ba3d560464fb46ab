"""nbgrader's gradebook, read in one place: opening it, a submission's scores, the due dates.

The gradebook (``gradebook.db``, nbgrader's SQLite database) holds every recorded grade. It
has a single writer while grading, the parent process (course/engine/recording.py); the
commands, the feedback pages and the formgrader read it. Everything that opens it goes
through ``open_gradebook``.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import nbgrader.api
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from .config import GRADEBOOK, settings

# nbgrader 0.9's gradebook models trip SQLAlchemy warnings about objects outside a session
# while scores are recorded; they say nothing about the grades and only clutter the report.
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.api")


def _one_engine_per_database() -> None:
    """Every ``Gradebook`` of this process on the same database shares one SQLAlchemy engine.

    nbgrader opens the gradebook anew in each of its steps (recording one submission opens it
    eight times) and each opening creates an engine, whose cache of compiled statements starts
    empty: compiling the same queries again was half the time of recording a submission. The
    engine is only ever a factory of connections: ``Gradebook.close`` still closes them all
    (``dispose``), and a disposed engine opens fresh ones when next used."""
    original = nbgrader.api.create_engine
    if getattr(original, "shared_per_database", False):
        return
    engines, lock = {}, threading.Lock()

    def create_engine(url, *args, **kwargs):
        key = (str(url), repr(args), repr(sorted(kwargs.items())))
        with lock:
            if key not in engines:
                engines[key] = original(url, *args, **kwargs)
            return engines[key]

    create_engine.shared_per_database = True
    nbgrader.api.create_engine = create_engine


_one_engine_per_database()


def open_gradebook(db: Path | str = GRADEBOOK) -> Gradebook:
    """The gradebook at ``db``: a path, or a database URL (as nbgrader's resources give it)."""
    url = db if isinstance(db, str) and "://" in db else f"sqlite:///{db}"
    return Gradebook(url, settings().course_id)


class Written(Enum):
    """Where a submission's written answers stand."""

    NONE = "none"  # the assignment has none
    PENDING = "pending"  # a person has yet to grade some
    GRADED = "graded"


@dataclass(frozen=True)
class Score:
    student: str
    assignment: str
    auto_score: float
    auto_max: float  # points of autograded test cells
    bonus: float  # extra credit (bonus cells, or awarded by a grader)
    manual_max: float  # points a person still has to award (or has awarded)
    manual_score: float | None  # None until every manual cell is graded
    failed_cells: tuple[str, ...]  # autograded test cells below full marks
    late_penalty: float = 0.0  # points nbgrader's late-submission plugin took
    seconds_late: float = 0.0
    timestamp: str = ""  # when it was handed in (timestamp.txt), if known

    @property
    def written(self) -> Written:
        if not self.manual_max:
            return Written.NONE
        return Written.GRADED if self.manual_score is not None else Written.PENDING

    @property
    def total(self) -> float:
        return self.auto_score + self.bonus + (self.manual_score or 0.0) - self.late_penalty


def _recorded(db: Path, assignment: str, student: str, read_from):
    """``read_from(submission)`` inside the gradebook's session, or None if the submission was never
    graded (or there is no gradebook yet)."""
    if not Path(db).exists():
        return None
    with open_gradebook(db) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        return read_from(submission)


def read(assignment: str, student: str, db: Path = GRADEBOOK) -> Score | None:
    """The recorded score of one submission, or None if it was never graded."""
    return _recorded(db, assignment, student, lambda submission: _score(submission, assignment, student))


def _score(submission, assignment: str, student: str) -> Score:
    # Grade cells that are also answer cells are read by a person; the rest are tests.
    grades, answers = [], set()
    for nb in submission.notebooks:
        grades += nb.grades
        answers |= {cell.name for cell in nb.notebook.solution_cells}
    auto = [g for g in grades if g.name not in answers]
    manual = [g for g in grades if g.name in answers]
    manual_done = not any(g.needs_manual_grade for g in manual)
    return Score(
        student=student,
        assignment=assignment,
        auto_score=sum(g.score - (g.extra_credit or 0.0) for g in auto),
        auto_max=sum(g.max_score for g in auto),
        manual_max=sum(g.max_score for g in manual),
        manual_score=sum(g.score - (g.extra_credit or 0.0) for g in manual) if manual_done else None,
        bonus=sum(g.extra_credit or 0.0 for g in grades),
        failed_cells=tuple(sorted(g.name for g in auto if g.score < g.max_score)),
        late_penalty=submission.late_submission_penalty or 0.0,
        seconds_late=submission.total_seconds_late or 0.0,
        timestamp=submission.timestamp.isoformat(" ") + " UTC" if submission.timestamp else "",
    )


def submissions(db: Path = GRADEBOOK) -> list[Score]:
    """Every graded submission in the gradebook, sorted by assignment and student."""
    if not Path(db).exists():
        return []
    with open_gradebook(db) as gb:  # one session for the whole class
        found = [_score(s, a.name, s.student_id) for a in gb.assignments for s in a.submissions]
    return sorted(found, key=lambda score: (score.assignment, score.student))


def cell_scores(assignment: str, student: str, db: Path = GRADEBOOK) -> dict[str, tuple[float, float]]:
    """grade id -> (score, max score) for every graded cell of a submission.

    The score includes extra credit, so a passed bonus cell scores above its max of 0.
    """
    with open_gradebook(db) as gb:
        submission = gb.find_submission(assignment, student)
        return {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}


def notebook_names(assignment: str, db: Path = GRADEBOOK) -> list[str]:
    """The notebooks the gradebook registered for the assignment."""
    with open_gradebook(db) as gb:
        return [nb.name for nb in gb.find_assignment(assignment).notebooks]


def apply_due_date(assignment: str, db: Path = GRADEBOOK) -> None:
    """Write the assignment's due date from course.toml into the gradebook (or clear it);
    nbgrader compares it with each submission's ``timestamp.txt`` (course/plugins/late.py)."""
    due = settings().due.get(assignment)
    with open_gradebook(db) as gb:
        record = gb.update_or_create_assignment(assignment)
        if due is None:
            record.duedate = None
            gb.db.commit()
        else:
            gb.update_or_create_assignment(assignment, duedate=due)


# -- what review decisions read and write (course/review.py) -----------------------------------

def _answers(submitted_notebook) -> set[str]:
    return {cell.name for cell in submitted_notebook.notebook.solution_cells}


def flagged(assignment: str, student: str, db: Path = GRADEBOOK) -> bool | None:
    """Whether nbgrader's flag is set on a notebook of the submission; None if it was never graded."""
    return _recorded(db, assignment, student, lambda submission: any(nb.flagged for nb in submission.notebooks))


def autograded_scores(assignment: str, student: str, db: Path = GRADEBOOK) -> dict[str, dict[str, float]]:
    """notebook -> grade id -> what the autograder gave each autograded cell (a bonus cell's
    extra credit included), whatever a person has written over it."""
    with open_gradebook(db) as gb:
        submission = gb.find_submission(assignment, student)
        return {nb.name: {g.name: (g.auto_score or 0.0) + (g.extra_credit or 0.0)
                          for g in nb.grades if g.name not in _answers(nb)}
                for nb in submission.notebooks}


def manual_marks(assignment: str, student: str, db: Path = GRADEBOOK) -> dict[tuple[str, str], bool]:
    """(notebook, grade id) -> whether it waits for a person, for each written answer a person
    has scored."""
    with open_gradebook(db) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {(nb.name, g.name): bool(g.needs_manual_grade) for nb in submission.notebooks
                for g in nb.grades if g.name in _answers(nb) and g.manual_score is not None}


def keep_manual_marks(assignment: str, student: str, marks: dict[tuple[str, str], bool],
                      db: Path = GRADEBOOK) -> None:
    """Written answers that were graded (``marks``, from before an autograde) are graded again:
    nbgrader marks every manual score for review on each autograde, in case the answer changed;
    the caller knows it did not."""
    with open_gradebook(db) as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            for grade in nb.grades:
                if marks.get((nb.name, grade.name)) is False and grade.manual_score is not None:
                    grade.needs_manual_grade = False
        gb.db.commit()


def override_autograded(assignment: str, student: str, scores: dict[str, dict[str, float | None]],
                        extra: dict[str, dict[str, float]], db: Path = GRADEBOOK) -> None:
    """Write scores over the autograder's: ``scores`` notebook -> grade id -> the score a person
    set (None: the autograder's own counts again), ``extra`` the extra credit of bonus cells."""
    with open_gradebook(db) as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            for grade in nb.grades:
                if grade.name in scores.get(nb.name, {}):
                    grade.manual_score = scores[nb.name][grade.name]
                    grade.needs_manual_grade = False
                if grade.name in extra.get(nb.name, {}):
                    grade.extra_credit = extra[nb.name][grade.name]
        gb.db.commit()
