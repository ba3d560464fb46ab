"""Review: a flagged grade is held until a person decides, and every decision is audited.

The grader flags a submission that changed what the tests rely on, or whose code matches a
pattern of tampering (course/engine/guards.py): its score may be inflated, so it must not
leave the course on its own. The one home of the review state is the **review log**,
``review.jsonl`` in the course root: one JSON object per line, appended (one write under a
lock, synced to disk) and never rewritten, so it is the audit trail too. Each line is an event:

* ``accept``: a person releases the score as graded;
* ``set``: a person sets the autograded points (``points``, extra credit ``bonus``), e.g. 0 for
  tampering; written into the gradebook over the autograder's scores, which stays the one
  home of scores (``enforce``);
* ``regrade``: a person had the submission graded again (after a test was fixed, say);
* ``applied``: ``course regrade --apply`` changed this grade.

Every event names who, when, why, the submission (the hash of its notebooks, from the
receipt, course/receipts.py), the flags it saw, and the grade in force before and after.

A recorded grade is **held** when its receipt has flags and no decision covers it. ``accept``
or ``set`` is in force when it is the latest decision made on the same notebooks and it saw
at least the flags the receipt has now: a decision survives grading the same notebooks again
(a regrade after a fixed test), a new submission or new evidence is held again. A grade
whose recording was cut short (the grader killed in the middle) is held until it is graded
again; one recorded before receipts existed is held while nbgrader's ``flagged`` is set.

Everywhere here ``layout`` names the records (the course's, or a regrade's staging copy,
course/engine/staging.py); the course's own files (``source/``, ``submitted/``) are read from
the course.

Threat: none from students (they never reach the course root); the log guards against
mistakes: a decision made on other evidence than the grade now has never releases it.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import nbformat

from . import cells, gradebook, receipts
from .config import LAYOUT, CourseError, Layout

EVENTS = ("accept", "set", "regrade", "applied")
DECISIONS = ("accept", "set")  # the events that settle a hold
INCOMPLETE = "its recording was cut short (the grader stopped while recording it): grade it again"
LEGACY = "flagged when it was graded, before receipts existed: grade it again to see the evidence"
EVIDENCE_ID = "course-review-evidence"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")  # object addresses in a message differ from run to run


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reviewer(given: str | None = None) -> str:
    """Who decides: the name given (``--by``), else the account's name."""
    if given and given.strip():
        return given.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


# -- the log -----------------------------------------------------------------------------------

def append(layout: Layout, event: dict) -> dict:
    """Append one event to the review log: one line, written at once under a lock and synced.
    A line a crash cut short stays alone on its line and is never read."""
    if event.get("event") not in EVENTS:
        raise ValueError(f"unknown review event {event.get('event')!r}")
    data = (json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n").encode()
    fd = os.open(layout.review_log, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return event


def read_log(layout: Layout = LAYOUT) -> list[dict]:
    """Every complete, well-formed event of the review log, oldest first."""
    path = layout.review_log
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") in EVENTS \
                and isinstance(event.get("student"), str) and isinstance(event.get("assignment"), str):
            events.append(event)
    return events


def history(events: list[dict], student: str, assignment: str) -> list[dict]:
    return [e for e in events if (e["student"], e["assignment"]) == (student, assignment)]


# -- where a grade stands ----------------------------------------------------------------------

@dataclass(frozen=True)
class Standing:
    """Where a recorded grade stands: held or not, why, and the decision in force."""

    held: bool = False
    reasons: tuple[str, ...] = ()
    decision: dict | None = None  # the accept or set in force
    receipt: dict | None = None

    def describe(self) -> str:
        """The review column of grades.csv."""
        if self.held:
            return "held for review: " + "; ".join(self.reasons)
        if not self.decision:
            return ""
        d = self.decision
        said = f": {d['reason']}" if d.get("reason") else ""
        if d["event"] == "set":
            return f"set to {d['points']:g}" + (f" +{d['bonus']:g} bonus" if d.get("bonus") else "") \
                + f" by {d['by']} ({d['at'][:10]}){said}"
        return f"accepted by {d['by']} ({d['at'][:10]}){said}"


def _same_flags(seen: list[str], now_flags: list[str]) -> bool:
    """Whether a decision that saw ``seen`` covers the flags a grade has now."""
    return {_ADDRESS.sub("0x", f) for f in now_flags} <= {_ADDRESS.sub("0x", f) for f in seen}


def in_force(events: list[dict], student: str, assignment: str, submission: str, flags: list[str]) -> dict | None:
    """The accept or set that covers this grade: the latest decision on the same notebooks,
    if it saw at least these flags."""
    for event in reversed(history(events, student, assignment)):
        if event["event"] in DECISIONS and event.get("submission") == submission:
            return event if _same_flags(event.get("flags") or [], flags) else None
    return None


def standing(student: str, assignment: str, layout: Layout = LAYOUT, events: list[dict] | None = None,
             receipt: dict | None = None) -> Standing:
    """Where the recorded grade of a submission stands (not held if it was never graded);
    ``receipt``: the one being recorded, before it is written."""
    events = read_log(layout) if events is None else events
    receipt = receipt or receipts.read(layout, student, assignment)
    if receipt is not None:
        flags, submission = list(receipt["flags"]), receipt["inputs"].get("submission", "")
    else:
        flagged = gradebook.flagged(assignment, student, layout.gradebook)
        if flagged is None:
            return Standing()
        if not layout.graded_stamp(student, assignment).is_file():
            return Standing(True, (INCOMPLETE,))
        flags = [LEGACY] if flagged else []
        submission = receipts.submission_hash(LAYOUT, student, assignment)
    decision = in_force(events, student, assignment, submission, flags)
    return Standing(bool(flags) and decision is None, tuple(flags), decision, receipt)


def grade_in_force(student: str, assignment: str, layout: Layout = LAYOUT, events: list[dict] | None = None) -> dict:
    """The grade as grades.csv and the LMS export see it (for the log's before and after)."""
    score = gradebook.read(assignment, student, layout.gradebook)
    if score is None:
        return {}
    now_standing = standing(student, assignment, layout, events)
    return {"autograded": score.auto_score, "bonus": score.bonus, "written": score.manual_score,
            "late_penalty": score.late_penalty, "total": score.total, "held": now_standing.held,
            "decision": now_standing.decision["event"] if now_standing.decision else None}


# -- what a decision writes into the gradebook -------------------------------------------------

def _registered(assignment: str) -> dict[str, dict[str, tuple[float, float | None]]]:
    """notebook -> grade id -> (points, bonus) of each autograded test cell of source/."""
    found = {}
    for path in sorted((LAYOUT.source / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        found[path.stem] = {cells.grade_id(c): (cells.points(c), cells.bonus(c)) for c in nb.cells if cells.is_test(c)}
    return found


def limits(assignment: str) -> tuple[float, float]:
    """(autograded points, bonus points) a ``set`` may give."""
    registered = _registered(assignment)
    return (sum(p for nb in registered.values() for p, b in nb.values() if b is None),
            sum(b for nb in registered.values() for _, b in nb.values() if b is not None))


def _spread(receipt: dict, registered: dict, points: float, bonus: float):
    """A ``set`` as cell scores: the test cells in notebook order each take their points until
    ``points`` are used up (sums stay exact); bonus cells likewise share ``bonus``."""
    scores, extra = {}, {}
    for nb, graded in receipt["cells"].items():
        for gid in graded:
            cell_points, cell_bonus = registered.get(nb, {}).get(gid, (0.0, None))
            if cell_bonus is None:
                scores.setdefault(nb, {})[gid] = take = min(cell_points, points)
                points -= take
            else:
                scores.setdefault(nb, {})[gid] = 0.0
                extra.setdefault(nb, {})[gid] = take = min(cell_bonus, bonus)
                bonus -= take
    return scores, extra


def enforce(student: str, assignment: str, layout: Layout = LAYOUT, events: list[dict] | None = None,
            receipt: dict | None = None) -> Standing:
    """Make the gradebook hold the grade the decision in force gives: a ``set``'s scores over
    the autograder's; otherwise, where a ``set`` was ever made for this grade, the
    autograder's own scores again (from the receipt). Idempotent; returns the standing."""
    events = read_log(layout) if events is None else events
    now_standing = standing(student, assignment, layout, events, receipt)
    receipt = now_standing.receipt
    if receipt is None:
        return now_standing
    decision = now_standing.decision
    if decision and decision["event"] == "set":
        scores, extra = _spread(receipt, _registered(assignment), float(decision["points"]),
                                float(decision.get("bonus") or 0))
    elif any(e["event"] == "set" for e in history(events, student, assignment)):
        registered = _registered(assignment)
        scores = {nb: dict.fromkeys(graded) for nb, graded in receipt["cells"].items()}
        extra = {nb: {gid: s for gid, s in graded.items() if registered.get(nb, {}).get(gid, (0, None))[1] is not None}
                 for nb, graded in receipt["cells"].items()}
    else:
        return now_standing
    gradebook.override_autograded(assignment, student, scores, extra, layout.gradebook)
    return now_standing


def decide(student: str, assignment: str, kind: str, by: str, reason: str = "", points: float | None = None,
           bonus: float = 0.0, layout: Layout = LAYOUT) -> dict:
    """Record a person's ``accept`` or ``set`` on a recorded grade; returns the logged event.

    The gradebook is written first, then the log: a decision cut short by a crash leaves the
    grade held (an interrupted accept of a set grade at worst shows the run's score)."""
    events = read_log(layout)
    current = standing(student, assignment, layout, events)
    if current.receipt is None:
        raise CourseError(f"{student}/{assignment} has no receipt (not graded, or graded before receipts): "
                          f"grade it again first (course grade {assignment} --student {student} --force)")
    event = {"event": kind, "student": student, "assignment": assignment, "at": now(), "by": by,
             "reason": reason, "submission": current.receipt["inputs"].get("submission", ""),
             "flags": list(current.receipt["flags"]), "receipt": current.receipt["id"]}
    if kind == "set":
        most, most_bonus = limits(assignment)
        if points is None or not 0 <= points <= most:
            raise CourseError(f"set takes the autograded points, from 0 to {most:g}")
        if not 0 <= bonus <= most_bonus:
            raise CourseError(f"--bonus takes the extra credit, from 0 to {most_bonus:g}")
        if not reason.strip():
            raise CourseError("set needs a --reason (it goes into the audit log and the feedback page)")
        event.update(points=float(points), bonus=float(bonus))
    elif kind != "accept":
        raise ValueError(f"not a decision: {kind!r}")
    before = grade_in_force(student, assignment, layout, events)
    enforce(student, assignment, layout, events + [event])
    after = grade_in_force(student, assignment, layout, events + [event])
    return append(layout, {**event, "before": before, "after": after})


# -- the evidence graders see in the formgrader ------------------------------------------------

def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def evidence(now_standing: Standing, student: str, assignment: str) -> str | None:
    """Markdown for the top of the autograded notebook (the formgrader shows it), or None."""
    if not now_standing.reasons and not now_standing.decision:
        return None
    lines = ["**Review (for graders; never shown to students).**", ""]
    if now_standing.held:
        lines.append("**Held:** this grade does not count (grades.csv, the LMS export and the feedback page "
                     "leave it out) until a person decides.")
    else:
        lines.append(f"**Decided:** {_md(now_standing.describe())}.")
    if now_standing.reasons:
        lines += ["", "Why the grader flagged it:", ""] + [f"* {_md(r)}" for r in now_standing.reasons]
    lines += ["", f"Decide: `python -m course review {assignment} {student} accept` (the score as "
              "graded), `... set POINTS --reason TEXT`, or `... regrade`."]
    if now_standing.receipt:
        lines += ["", f"Receipt: {receipts.short(now_standing.receipt)}, in full: `python -m course receipt "
                  f"{student} {assignment}`."]
    return "\n".join(lines)


def place_evidence(nb, text: str | None) -> None:
    """Put ``text`` on top of an autograded notebook as its only evidence cell (any other cell
    that claims to be one is dropped: a submission cannot bring its own)."""
    nb.cells = [c for c in nb.cells if not cells.is_evidence(c) and c.get("id") != EVIDENCE_ID]
    if text:
        cell = nbformat.v4.new_markdown_cell(text, id=EVIDENCE_ID)
        cell.metadata["course"] = {"evidence": True}
        nb.cells.insert(0, cell)
