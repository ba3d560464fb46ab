"""The score table: one row per student, one column per assignment, from the gradebook."""

from __future__ import annotations

from ..config import LAYOUT
from ..engine.jobs import Outcome
from ..gradebook import Score, Written, submissions
from ..review import Standing, read_log, standing


def _cell(score: Score | None, outcome: Outcome | None, review: Standing = Standing()) -> str:
    if outcome is not None and not outcome.ok:
        return "not graded"
    if score is None:
        return "-"
    text = f"{score.auto_score:g}/{score.auto_max:g}"
    if score.written is Written.GRADED:
        text += f" +{score.manual_score:g}"
    elif score.written is Written.PENDING:
        text += f" +?/{score.manual_max:g}"
    if score.bonus:
        text += f" +{score.bonus:g} bonus"
    if score.seconds_late > 0:
        text += f" late -{score.late_penalty:g}" if score.late_penalty else " late"
    if review.held:
        text += " HELD"
    elif review.decision and review.decision["event"] == "set":
        text += " (set)"
    return text


def table(assignments: list[str], students: list[str], outcomes: list[Outcome] = (),
          scores: list[Score] | None = None) -> str:
    """One row per student, one column per assignment: autograded points, then manual points
    (``+?/4`` while a person has yet to grade 4 points of written answers), then extra credit;
    ``HELD`` while a flagged grade waits for a person's review, ``(set)`` after a person set it.
    ``scores``: the gradebook's, if the caller has read them already."""
    by_key = {(o.student, o.assignment): o for o in outcomes}
    recorded = {(s.student, s.assignment): s for s in (submissions() if scores is None else scores)}
    events = read_log(LAYOUT)
    header = ["student", *assignments]
    # A submission the gradebook does not hold was never graded: nothing to stand (without
    # opening the gradebook once per such student, as standing() would).
    rows = [
        [s, *(_cell(recorded.get((s, a)), by_key.get((s, a)),
                    standing(s, a, LAYOUT, events) if (s, a) in recorded else Standing()) for a in assignments)]
        for s in students
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    errors = [o for o in outcomes if not o.ok]
    if errors:
        out += ["", "Not graded:"] + [f"  {o.student}/{o.assignment}: {o.message}" for o in errors]
    return "\n".join(out)
