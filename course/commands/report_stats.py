"""The dashboard's numbers, computed from what course/commands/report_data.py read.

Plain functions of plain values, so each figure on the page can be checked by hand:

* per graded cell: submissions that failed it (a test cell below full marks, a bonus cell
  not won), the share, the points lost across the class, where the failures happened
  (visible check, hidden test, did not run, other), the likely causes recorded, and an
  **item discrimination index**: the point-biserial correlation between passing the cell
  (1 or 0) and the autograded points of the *other* cells. Near 1: the students who fail
  this cell are those with a low total elsewhere; near 0 or negative: failing it says
  nothing about the rest (a cell that tests something else, a trap, or a broken test). It
  is undefined (None) when everyone or no one passed, or the rest does not vary; below
  about 30 submissions it is noisy;
* per written answer: how many a person has graded, how many wait, the mean of those graded;
* the score distribution and the late and held submissions;
* grading health: the latest grading's status of each submission, the slowest, kernel deaths;
* across assignments: the hardest exercises (lowest share of their points earned).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from ..engine.jobs import Status
from .report_data import Cell, ClassData, Submission, Where

SLOWEST = 10
NOT_LOGGED = "not logged"  # graded before the grading log existed, or the log was lost


def point_biserial(passed: list[bool], rest: list[float]) -> float | None:
    """Pearson's correlation of a 0/1 variable with a score (population standard deviation),
    or None where it is undefined."""
    n = len(passed)
    n1 = sum(passed)
    n0 = n - n1
    if n1 == 0 or n0 == 0:
        return None
    mean = sum(rest) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in rest) / n)
    if sd == 0:
        return None
    m1 = sum(x for p, x in zip(passed, rest) if p) / n1
    m0 = sum(x for p, x in zip(passed, rest) if not p) / n0
    return (m1 - m0) / sd * math.sqrt(n1 * n0) / n


@dataclass(frozen=True)
class CellRow:
    assignment: str
    cell: Cell
    submissions: int
    failed: int
    points_lost: float  # a bonus cell: the extra credit not won
    mean_points: float
    where: dict[str, int]  # Where category -> failures (empty where the notebooks were not read)
    causes: tuple[tuple[str, int], ...]  # (likely cause, submissions), most frequent first
    discrimination: float | None

    @property
    def fail_share(self) -> float:
        return self.failed / self.submissions if self.submissions else 0.0

    @property
    def earned_share(self) -> float:
        """The share of the cell's points the class earned (1: nobody lost any)."""
        return self.mean_points / self.cell.points if self.cell.points else 1.0


def cell_rows(data: ClassData) -> list[CellRow]:
    """One row per autograded cell (test and bonus), in notebook order."""
    subs = data.submissions
    rows = []
    for cell in data.cells:
        if cell.kind == "answer":
            continue
        points = [s.points.get(cell.key) or 0.0 for s in subs]
        failed = [s for s in subs if cell.key in s.failed]
        where = Counter(s.failures[cell.key].where for s in failed if cell.key in s.failures)
        causes = Counter(c for s in failed if cell.key in s.failures for c in s.failures[cell.key].causes)
        rest = [s.score.auto_score - (p if cell.kind == "test" else 0.0) for s, p in zip(subs, points)]
        lost = cell.points * len(failed) if cell.kind == "bonus" else sum(cell.points - p for p in points)
        rows.append(CellRow(
            data.assignment, cell, len(subs), len(failed), lost, sum(points) / len(subs) if subs else 0.0,
            {w: where.get(w, 0) for w in Where.ALL} if where else {},
            tuple(sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))),
            point_biserial([cell.key not in s.failed for s in subs], rest)))
    return rows


@dataclass(frozen=True)
class AnswerRow:
    cell: Cell
    graded: int
    pending: int
    mean: float | None  # of the graded ones


def answer_rows(data: ClassData) -> list[AnswerRow]:
    rows = []
    for cell in data.cells:
        if cell.kind != "answer":
            continue
        marks = [s.points.get(cell.key) for s in data.submissions]
        graded = [m for m in marks if m is not None]
        rows.append(AnswerRow(cell, len(graded), len(marks) - len(graded),
                              sum(graded) / len(graded) if graded else None))
    return rows


@dataclass(frozen=True)
class Distribution:
    submissions: int
    auto_max: float
    manual_max: float
    bonus_max: float
    autograded: list[float]
    written: list[float]  # of the submissions whose written answers are all graded
    written_pending: int
    bonus: list[float]
    totals: list[float]
    late: list[Submission]
    held: list[Submission]

    @staticmethod
    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None


def distribution(data: ClassData) -> Distribution:
    subs = data.submissions
    scores = [s.score for s in subs]
    return Distribution(
        submissions=len(subs),
        auto_max=max((s.auto_max for s in scores), default=0.0),
        manual_max=max((s.manual_max for s in scores), default=0.0),
        bonus_max=sum(c.points for c in data.cells if c.kind == "bonus"),
        autograded=[s.auto_score for s in scores],
        written=[s.manual_score for s in scores if s.manual_score is not None and s.manual_max],
        written_pending=sum(1 for s in scores if s.manual_max and s.manual_score is None),
        bonus=[s.bonus for s in scores],
        totals=[s.total for s in scores],
        late=sorted((s for s in subs if s.score.seconds_late > 0), key=lambda s: -s.score.seconds_late),
        held=[s for s in subs if s.held],
    )


@dataclass(frozen=True)
class Health:
    counts: dict[str, int]  # status word of the latest grading -> submissions
    slowest: list[Submission]  # by the latest grading's time
    deaths: list[Submission]  # submissions in which the kernel died, most deaths first
    unrecorded: int  # submissions whose only logged grading was an error (no grade)
    seconds: list[float]


def health(data: ClassData) -> Health:
    words = [s.value for s in Status if s is not Status.UP_TO_DATE] + [NOT_LOGGED]
    counts = Counter(s.log.status.value if s.log else NOT_LOGGED for s in data.submissions)
    counts.update(e.status.value for e in data.unrecorded)
    timed = [s for s in data.submissions if s.log and s.log.seconds > 0]
    return Health(
        counts={w: counts.get(w, 0) for w in words},
        slowest=sorted(timed, key=lambda s: -s.log.seconds)[:SLOWEST],
        deaths=sorted((s for s in data.submissions if s.deaths), key=lambda s: (-len(s.deaths), s.student)),
        unrecorded=len(data.unrecorded),
        seconds=[s.log.seconds for s in timed],
    )


def hardest(rows: list[CellRow], count: int = 15) -> list[CellRow]:
    """The test cells whose points the class earned least, across assignments (ties: more failed)."""
    tests = [r for r in rows if r.cell.kind == "test" and r.submissions and r.failed]
    return sorted(tests, key=lambda r: (r.earned_share, -r.fail_share, r.assignment, r.cell.grade_id))[:count]
