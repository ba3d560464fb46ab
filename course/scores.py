"""Read scores back from nbgrader's gradebook and print them as a table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from .config import GRADEBOOK, settings
from .outcome import Outcome


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
    def total(self) -> float:
        return self.auto_score + self.bonus + (self.manual_score or 0.0) - self.late_penalty


def _gradebook(db: Path) -> Gradebook:
    return Gradebook(f"sqlite:///{db}", settings().course_id)


def read(assignment: str, student: str, db: Path = GRADEBOOK) -> Score | None:
    """The recorded score of one submission, or None if it was never graded."""
    if not db.exists():
        return None
    with _gradebook(db) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
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


def cell_scores(assignment: str, student: str, db: Path = GRADEBOOK) -> dict[str, tuple[float, float]]:
    """grade id -> (score, max score) for every graded cell of a submission.

    The score includes extra credit, so a passed bonus cell scores above its max of 0.
    """
    with _gradebook(db) as gb:
        submission = gb.find_submission(assignment, student)
        return {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}


def _cell(score: Score | None, outcome: Outcome | None) -> str:
    if outcome is not None and not outcome.ok:
        return "not graded"
    if score is None:
        return "-"
    text = f"{score.auto_score:g}/{score.auto_max:g}"
    if score.manual_max:
        text += f" +{score.manual_score:g}" if score.manual_score is not None else f" +?/{score.manual_max:g}"
    if score.bonus:
        text += f" +{score.bonus:g} bonus"
    if score.seconds_late > 0:
        text += f" late -{score.late_penalty:g}" if score.late_penalty else " late"
    return text


def table(assignments: list[str], students: list[str], outcomes: list[Outcome] = ()) -> str:
    """One row per student, one column per assignment: autograded points, then manual points
    (``+?/4`` while a person has yet to grade 4 points of written answers), then extra credit."""
    by_key = {(o.student, o.assignment): o for o in outcomes}
    header = ["student", *assignments]
    rows = [
        [s, *(_cell(read(a, s), by_key.get((s, a))) for a in assignments)]
        for s in students
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    errors = [o for o in outcomes if not o.ok]
    if errors:
        out += ["", "Not graded:"] + [f"  {o.student}/{o.assignment}: {o.message}" for o in errors]
    return "\n".join(out)
