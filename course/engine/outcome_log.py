"""The grading log: how each grading of a submission ended and how long it took.

The gradebook keeps scores, not how grading went; the report prints the status and the
time of each submission and forgets them. The course dashboard (course/commands/report.py)
needs both for its *grading health* section, so the parent appends one line per graded
submission to ``autograded/grading-log.jsonl`` as each outcome arrives
(course/commands/grade.py), from the same process that records the grades (the single
writer). Each line is a JSON object:

* ``student``, ``assignment``: the submission;
* ``status``: the word the report prints (course/engine/jobs.py ``Status``): ``graded``,
  ``flagged``, ``limit hit`` or ``error``. Submissions skipped as ``up to date`` are not
  logged: their last grading's line still holds;
* ``seconds``: the worker's wall-clock time for the submission (0 when it never reached a
  worker: refused, or its worker was lost);
* ``message`` and ``flags``: the report's words for it (what a limit stopped, why it was
  flagged, why it was not graded);
* ``at``: when the parent logged it (UTC, ISO 8601).

The log only grows; the latest line of a submission is its state. A line is one write on a
descriptor opened for appending, so a grader killed mid-write leaves at most one torn last
line, which readers skip, as they skip any line that is not such an object.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..config import LAYOUT, Layout
from .jobs import Outcome, Status

NAME = "grading-log.jsonl"
_warned = False


def path(layout: Layout = LAYOUT) -> Path:
    return layout.autograded / NAME


@dataclass(frozen=True)
class Entry:
    """One logged grading of a submission."""

    student: str
    assignment: str
    status: Status
    seconds: float
    message: str
    flags: tuple[str, ...]
    at: str


def append(outcome: Outcome, layout: Layout = LAYOUT) -> None:
    """Log one outcome (skipped: ``up to date``). A log that cannot be written costs a warning,
    never the grade: the gradebook already holds it."""
    global _warned
    if outcome.status is Status.UP_TO_DATE:
        return
    line = json.dumps({"student": outcome.student, "assignment": outcome.assignment,
                       "status": outcome.status.value, "seconds": round(float(outcome.seconds), 2),
                       "message": outcome.message, "flags": list(outcome.flags),
                       "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}, ensure_ascii=False)
    target = path(layout)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError as exc:
        if not _warned:
            print(f"warning: the grading log {target} could not be written ({exc}); grades are recorded, "
                  "the dashboard's grading health will lack these submissions", file=sys.stderr)
            _warned = True


def _entry(line: str) -> Entry | None:
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            return None
        flags = data["flags"]
        entry = Entry(data["student"], data["assignment"], Status(data["status"]), float(data["seconds"]),
                      data["message"], tuple(flags), data["at"])
    except (ValueError, KeyError, TypeError):
        return None
    texts = (entry.student, entry.assignment, entry.message, entry.at, *entry.flags)
    return entry if isinstance(flags, list) and all(isinstance(t, str) for t in texts) else None


def latest(layout: Layout = LAYOUT) -> dict[tuple[str, str], Entry]:
    """(student, assignment) -> the latest logged grading of that submission."""
    try:
        text = path(layout).read_text(errors="replace")
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        entry = _entry(line)
        if entry is not None:
            found[entry.student, entry.assignment] = entry
    return found
