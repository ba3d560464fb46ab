"""``course regrade``: grade every recorded submission again, show what would change, apply on request.

After a test or a sample was fixed mid-term:

    course regrade ASSIGNMENT                          grade again into staging; show the diff
    course regrade ASSIGNMENT --apply [--allow-lower]  record what was staged

Grading again goes into a **staging** copy of the records, ``regrade/<assignment>/``
(course/engine/staging.py): the course's gradebook, ``autograded/``, feedback and review log
are not written. The diff compares, per student and per test cell, the grade in force now with
the staged one, and gives each changed cell's new message (the instructor's view: hidden test
messages included); it counts raised, lowered and unchanged grades, prints a table and writes
an HTML page, ``regrade/<assignment>/diff.html``.

``--apply`` records the staged results (exactly what the diff showed, without grading again)
with the recording that grading uses: written answers a person graded stay graded (the
notebooks did not change), review decisions made on the same notebooks stay in force, a
flagged grade stays held. It refuses, changing nothing, when an input changed since staging,
and when a grade would be lowered, unless ``--allow-lower`` (each one is listed). Every
changed grade gets an ``applied`` event in the review log (course/review.py), with the grade
before and after and the cells that changed; then the feedback pages and grades.csv are
written again and the staging folder is removed.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field

import nbformat

from .. import cells, review
from ..config import LAYOUT, CourseError, Layout, check_assignment
from ..engine import plan, staging
from ..engine.jobs import Outcome
from ..files import write_atomic
from ..gradebook import apply_due_date, cell_scores, submissions
from .review import number


@dataclass
class Change:
    """What regrading does to one student's grade."""

    student: str
    before: dict
    after: dict
    cells: list[tuple[str, float | None, float | None, str]] = field(default_factory=list)  # id, before, after, message

    @property
    def kind(self) -> str:
        old, new = self.before.get("total"), self.after.get("total")
        if old is None or new is None or abs(new - old) < 1e-9:
            return "unchanged"
        return "raised" if new > old else "lowered"

    @property
    def note(self) -> str:
        notes = []
        if self.after.get("held"):
            notes.append("held for review" + ("" if self.before.get("held") else " (newly flagged)"))
        if self.after.get("decision") == "set":
            notes.append("a review decision sets it")
        return "; ".join(notes)


def _messages(out: Layout, student: str, assignment: str) -> dict[str, str]:
    """grade id -> what the staged run says of each test cell (first line of its error)."""
    found = {}
    for path in sorted(out.graded(student, assignment).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if not cells.is_test(cell):
                continue
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                text = f"{errors[0].get('ename', '')}: {errors[0].get('evalue', '')}".strip(": ")
                found[cells.grade_id(cell)] = text.split("\n", 1)[0][:300]
            else:
                found[cells.grade_id(cell)] = "passes" if cells.passed(cell) else "wrote to stderr"
    return found


def diff(assignment: str, out: Layout, students: list[str]) -> list[Change]:
    """The change of each student's grade between the course's records and the staged ones
    (``students``: those staging recorded)."""
    now_events, staged_events = review.read_log(LAYOUT), review.read_log(out)
    changes = []
    for student in students:
        change = Change(student, review.grade_in_force(student, assignment, LAYOUT, now_events),
                        review.grade_in_force(student, assignment, out, staged_events))
        old, new = cell_scores(assignment, student, LAYOUT.gradebook), cell_scores(assignment, student, out.gradebook)
        messages = _messages(out, student, assignment)
        for gid in list(old) + [g for g in new if g not in old]:
            a, b = old.get(gid, (None,))[0], new.get(gid, (None,))[0]
            if a != b:
                change.cells.append((gid, a, b, messages.get(gid, "")))
        changes.append(change)
    return changes


def counts(changes: list[Change]) -> str:
    tally = {kind: sum(c.kind == kind for c in changes) for kind in ("raised", "lowered", "unchanged")}
    return f"{tally['raised']} raised, {tally['lowered']} lowered, {tally['unchanged']} unchanged"


def table(assignment: str, changes: list[Change]) -> str:
    """The diff for the terminal: one line per student, one per changed cell under it."""
    width = max([len(c.student) for c in changes] + [7])
    lines = [f"{assignment}: {len(changes)} grade(s) graded again: {counts(changes)}",
             f"  {'student':<{width}}  {'before':>7}  {'after':>7}  change"]
    for c in changes:
        note = f"  ({c.note})" if c.note else ""
        lines.append(f"  {c.student:<{width}}  {number(c.before.get('total')):>7}  {number(c.after.get('total')):>7}"
                     f"  {c.kind.upper() if c.kind == 'lowered' else c.kind}{note}")
        lines += [f"  {'':<{width}}    {gid}: {number(a)} -> {number(b)}  {message}" for gid, a, b, message in c.cells]
    return "\n".join(lines)


def page(assignment: str, changes: list[Change]) -> str:
    """The diff as a self-contained HTML page (for the instructor: it quotes hidden test messages)."""
    e = html.escape
    rows = []
    for c in changes:
        cell_rows = "".join(f"<tr><td></td><td>{e(gid)}</td><td>{number(a)}</td><td>{number(b)}</td>"
                            f"<td>{e(message)}</td></tr>" for gid, a, b, message in c.cells)
        rows.append(f'<tr class="{c.kind}"><th>{e(c.student)}</th><td>total</td>'
                    f"<td>{number(c.before.get('total'))}</td><td>{number(c.after.get('total'))}</td>"
                    f"<td>{e(c.kind)}{(' (' + e(c.note) + ')') if c.note else ''}</td></tr>{cell_rows}")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Regrade of " + e(assignment) + "</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:left}"
            ".lowered th,.lowered td{background:#fde8e8}.raised th,.raised td{background:#e8f6e8}</style></head>"
            f"<body><h1>Regrade of {e(assignment)}: what would change</h1><p>{e(counts(changes))}. Nothing "
            "changes until <code>python -m course regrade " + e(assignment) + " --apply</code>; lowered grades "
            "need <code>--allow-lower</code>.</p><table><tr><th>student</th><th>cell</th><th>before</th>"
            f"<th>after</th><th>change / new message</th></tr>{''.join(rows)}</table></body></html>")


def recorded_students(assignment: str) -> tuple[list[str], list[str]]:
    """(students whose recorded grade can be graded again, those whose submission is gone)."""
    graded = sorted(s.student for s in submissions(LAYOUT.gradebook) if s.assignment == assignment)
    handed_in = set(plan.students(assignment))
    return [s for s in graded if s in handed_in], [s for s in graded if s not in handed_in]


def stage(assignment: str, workers: int | None = None, unsafe: bool = False, progress=None
          ) -> tuple[list[Change], list[Outcome], list[str]]:
    """Grade every recorded submission again into staging; (changes, outcomes, students left out)."""
    from .grade import refuse_without_sandbox

    check_assignment(assignment)
    refuse_without_sandbox(unsafe)
    students, gone = recorded_students(assignment)
    if not students:
        raise CourseError(f"no recorded grade of {assignment} to grade again (course grade grades new submissions)")
    out, outcomes = staging.stage(assignment, students, LAYOUT.staging(assignment), workers, unsafe=unsafe,
                                  progress=progress)
    changes = diff(assignment, out, [o.student for o in outcomes if o.ok])
    write_atomic(out.root / "diff.html", page(assignment, changes))
    return changes, outcomes, gone


def apply(assignment: str, by: str, allow_lower: bool = False, reason: str = "") -> list[Change]:
    """Record what was staged into the course's records; returns the changes applied."""
    from ..engine.recording import accept
    from ..plugins.feedback import write_pages
    from .export import write_grades

    folder = LAYOUT.staging(assignment)
    items = staging.staged(folder)
    if not items:
        raise CourseError(f"nothing staged for {assignment}: run `python -m course regrade {assignment}` first")
    stale = sorted(i.job.student for i in items if i.job.fingerprint != plan.fingerprint(assignment, i.job.student))
    if stale:
        raise CourseError(f"the inputs of {', '.join(stale)} changed since the regrade was staged: run "
                          f"`python -m course regrade {assignment}` again and look at the new diff")
    changes = {c.student: c for c in diff(assignment, Layout(folder), [i.job.student for i in items if i.recorded])}
    lowered = [c for c in changes.values() if c.kind == "lowered"]
    if lowered and not allow_lower:
        listed = "\n".join(f"  {c.student}: {number(c.before.get('total'))} -> {number(c.after.get('total'))}"
                           for c in lowered)
        raise CourseError(f"{len(lowered)} grade(s) would be lowered; nothing was changed. Pass --allow-lower "
                          f"to apply them:\n{listed}")
    plan.register(assignment)
    apply_due_date(assignment)
    applied = []
    for item in items:
        student = item.job.student
        before = review.grade_in_force(student, assignment, LAYOUT)
        outcome = accept(item.result_json, item.job)
        if not outcome.ok:
            continue
        write_pages(assignment, student)
        after = review.grade_in_force(student, assignment, LAYOUT)
        change = changes.get(student)
        if before != after or (change and change.cells):
            now = review.standing(student, assignment, LAYOUT)
            review.append(LAYOUT, {
                "event": "applied", "student": student, "assignment": assignment, "at": review.now(), "by": by,
                "reason": reason or "course regrade --apply", "before": before, "after": after,
                "submission": now.receipt["inputs"].get("submission", "") if now.receipt else "",
                "flags": list(now.reasons), "receipt": now.receipt["id"] if now.receipt else "",
                "cells": {gid: [a, b] for gid, a, b, _ in (change.cells if change else [])}})
            applied.append(change or Change(student, before, after))
    write_grades()
    shutil.rmtree(folder, ignore_errors=True)
    return applied
