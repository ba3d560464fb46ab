"""``course review``: the grades held for review, their evidence, and a person's decision on each.

    course review [ASSIGNMENT]                         list held grades with their evidence
    course review ASSIGNMENT STUDENT accept            release the score as graded
    course review ASSIGNMENT STUDENT set POINTS --reason TEXT [--bonus B]
    course review ASSIGNMENT STUDENT regrade           grade it again (after a test was fixed)

In a terminal, the listing asks for a decision on each held grade in turn. Every decision is
appended to the review log with who (``--by``, else the account), when, why, and the grade
before and after (course/review.py); then the evidence on top of the autograded notebook,
the student's feedback pages and grades.csv are written again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import nbformat

from .. import receipts, review
from ..config import LAYOUT, CourseError, check_assignment
from ..files import write_atomic
from ..gradebook import submissions


def number(value) -> str:
    return "-" if value is None else f"{value:g}"


def recorded(assignments: list[str] | None) -> list[tuple[str, str]]:
    """(student, assignment) of every recorded grade, by assignment then student."""
    return [(s.student, s.assignment) for s in submissions(LAYOUT.gradebook)
            if not assignments or s.assignment in assignments]


def listing(assignments: list[str] | None, everything: bool = False) -> list[tuple[str, str, review.Standing]]:
    """The held grades (``everything``: also those with a decision or flags) and their standing."""
    events = review.read_log(LAYOUT)
    found = []
    for student, assignment in recorded(assignments):
        now = review.standing(student, assignment, LAYOUT, events)
        if now.held or (everything and (now.decision or now.reasons)):
            found.append((student, assignment, now))
    return found


def describe(student: str, assignment: str, now: review.Standing, events: list[dict] | None = None) -> str:
    """A held (or decided) grade with its evidence and history, as the listing prints it."""
    state = "HELD" if now.held else now.describe()
    lines = [f"{assignment}/{student}: {state}"]
    if now.receipt:
        lines.append(f"  as graded: {receipts.total(now.receipt):g} autograded points (bonus included); "
                     f"receipt {receipts.short(now.receipt)}")
    lines += ["  evidence:"] + [f"    - {reason}" for reason in now.reasons] if now.reasons else []
    for event in review.history(events or [], student, assignment):
        before, after = event.get("before") or {}, event.get("after") or {}
        change = f"total {number(before.get('total'))} -> {number(after.get('total'))}" if before or after else ""
        said = f": {event['reason']}" if event.get("reason") else ""
        lines.append(f"  {event.get('at', '?')} {event['event']} by {event.get('by', '?')}{said} ({change})")
    if now.held:
        lines.append(f"  decide: python -m course review {assignment} {student} accept | set POINTS --reason TEXT"
                     " | regrade")
    return "\n".join(lines)


def refresh(student: str, assignment: str) -> None:
    """After a decision: the evidence in the autograded notebooks, the feedback pages, grades.csv."""
    from ..plugins.feedback import write_pages
    from .export import write_grades

    now = review.standing(student, assignment, LAYOUT)
    text = review.evidence(now, student, assignment)
    for path in sorted(LAYOUT.graded(student, assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        review.place_evidence(nb, text)
        write_atomic(path, nbformat.writes(nb))
    write_pages(assignment, student)
    write_grades()


def regrade_one(student: str, assignment: str, by: str, reason: str = "", unsafe: bool = False) -> dict:
    """Grade one submission again on a person's decision, and log it with before and after."""
    from .grade import grade

    before = review.grade_in_force(student, assignment, LAYOUT)
    outcome = grade(assignment, [student], force=True, workers=1, unsafe=unsafe)[0]
    if not outcome.ok:
        raise CourseError(f"{student}/{assignment} could not be graded again: {outcome.message}")
    now = review.standing(student, assignment, LAYOUT)
    event = {"event": "regrade", "student": student, "assignment": assignment, "at": review.now(), "by": by,
             "reason": reason, "submission": now.receipt["inputs"].get("submission", "") if now.receipt else "",
             "flags": list(now.reasons), "receipt": now.receipt["id"] if now.receipt else "",
             "before": before, "after": review.grade_in_force(student, assignment, LAYOUT)}
    return review.append(LAYOUT, event)


def decide(assignment: str, student: str, words: list[str], by: str, reason: str = "", bonus: float = 0.0,
           unsafe: bool = False) -> dict:
    """Carry out one decision (``accept``, ``set POINTS``, ``regrade``); returns the logged event."""
    check_assignment(assignment)
    if (student, assignment) not in recorded([assignment]):
        raise CourseError(f"no recorded grade of {assignment} for {student!r}")
    kind = words[0] if words else ""
    if kind == "accept" and len(words) == 1:
        event = review.decide(student, assignment, "accept", by, reason)
    elif kind == "set" and len(words) == 2:
        try:
            points = float(words[1])
        except ValueError:
            raise CourseError(f"set takes a number of points, not {words[1]!r}") from None
        event = review.decide(student, assignment, "set", by, reason, points, bonus)
    elif kind == "regrade" and len(words) == 1:
        from .export import write_grades

        event = regrade_one(student, assignment, by, reason, unsafe)  # grading writes the pages and evidence
        write_grades()
        return event
    else:
        raise CourseError("a decision is `accept`, `set POINTS --reason TEXT` or `regrade`, "
                          f"not {' '.join(words)!r}")
    refresh(student, assignment)
    return event


def ask(held: list[tuple[str, str, review.Standing]], by: str, prompt: Callable[[str], str] = input,
        unsafe: bool = False) -> int:
    """Ask for a decision on each held grade in turn (Enter: leave it held); returns decisions made."""
    made = 0
    for student, assignment, now in held:
        print("\n" + describe(student, assignment, now))
        answer = prompt("decision [accept | set POINTS | regrade | Enter: leave held | q: quit]: ").strip()
        if answer in ("q", "quit"):
            break
        if not answer:
            continue
        words = answer.split()
        reason = prompt("reason (goes into the audit log and the student's feedback page): ").strip()
        try:
            event = decide(assignment, student, words, by, reason, unsafe=unsafe)
        except CourseError as exc:
            print(f"  not recorded: {exc}")
            continue
        made += 1
        print(f"  recorded: {event['event']} (total {number(event['before'].get('total'))} -> "
              f"{number(event['after'].get('total'))})")
    return made


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
