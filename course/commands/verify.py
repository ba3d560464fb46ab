"""``course verify``: grade recorded submissions again and compare with their receipts.

    course verify [ASSIGNMENT ...] [--sample N | --all | --student S] [--seed SEED]

Each chosen submission is graded again, in the sandbox, into a throw-away copy of the records
(course/engine/staging.py; the course's own are only read), and the new receipt is compared
with the recorded one (course/receipts.py). The same inputs must give the identical scores
and flags: a difference means grading is not deterministic (a flaky test, an unseeded
random choice, a dependence on time or on the order of a set) and is a bug. When an input
changed since the grade was recorded (a fixed test, say), the receipt cannot be checked:
that is reported, with the inputs that changed (``course regrade`` applies such a change).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import receipts
from ..config import LAYOUT, CourseError
from ..engine import plan, staging
from .review import recorded

DEFAULT_SAMPLE = 5


@dataclass(frozen=True)
class Check:
    student: str
    assignment: str
    verdict: str  # "identical", "DIFFERS", "inputs changed", "error"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "identical"


def choose(assignment: str, students: list[str] | None, sample: int | None, rng: random.Random) -> list[str]:
    """The submissions to verify: those given, all (``sample`` None), or a random sample."""
    handed_in = set(plan.students(assignment))
    candidates = [s for s, _ in recorded([assignment])
                  if s in handed_in and receipts.read(LAYOUT, s, assignment) is not None]
    if students:
        unknown = sorted(set(students) - set(candidates))
        if unknown:
            raise CourseError(f"no receipt of {assignment} to verify for: {', '.join(unknown)} (grade them first)")
        return sorted(students)
    if sample is None or sample >= len(candidates):
        return candidates
    return sorted(rng.sample(candidates, sample))


def compare(old: dict, new: dict | None, assignment: str, student: str, why: str = "") -> Check:
    """The verdict on one submission: its recorded receipt against the one graded now."""
    if new is None:
        return Check(student, assignment, "error", why or "not graded again")
    inputs = receipts.changed_inputs(old, new)
    if inputs:
        return Check(student, assignment, "inputs changed",
                     f"since it was graded: {', '.join(inputs)}; regrade to apply the change")
    found = [f"{cell} {a} -> {b}" for cell, (a, b) in receipts.changed_cells(old, new).items()]
    if set(old["flags"]) != set(new["flags"]):
        found.append("flags differ")
    if found:
        return Check(student, assignment, "DIFFERS", "; ".join(found))
    ran = [f"{k}: {old['run'].get(k)} -> {new['run'].get(k)}" for k in receipts.RUN
           if old["run"].get(k) != new["run"].get(k)]
    return Check(student, assignment, "identical", f"receipt {new['id'][:12]}"
                 + (f" (ran elsewhere: {'; '.join(ran)})" if ran else ""))


def verify(assignment: str, students: list[str], workers: int | None = None, unsafe: bool = False,
           progress=None) -> list[Check]:
    """Grade the students' submissions again into a temporary copy and compare the receipts."""
    from .grade import refuse_without_sandbox

    refuse_without_sandbox(unsafe)
    if not students:
        return []
    with tempfile.TemporaryDirectory(prefix=f"verify-{assignment}-") as tmp:
        out, outcomes = staging.stage(assignment, students, Path(tmp) / "records", workers, unsafe=unsafe,
                                      progress=progress)
        why = {o.student: o.message for o in outcomes if not o.ok}
        return [compare(receipts.read(LAYOUT, s, assignment), receipts.read(out, s, assignment), assignment, s,
                        why.get(s, "")) for s in students]


def report(checks: list[Check]) -> str:
    width = max([len(c.student) for c in checks] + [7])
    lines = [f"  {c.assignment}/{c.student:<{width}}  {c.verdict}" + (f": {c.detail}" if c.detail else "")
             for c in checks]
    bad = [c for c in checks if not c.ok]
    lines.append(f"{len(checks) - len(bad)} of {len(checks)} identical to their receipts"
                 + (f"; {len(bad)} not: see above" if bad else ""))
    return "\n".join(lines)
