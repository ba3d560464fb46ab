"""Autograde submissions, one student at a time, as a pipeline of small steps.

For every ``submitted/<student>/<assignment>/`` folder:

1. *check*: every notebook must be a readable, valid notebook; otherwise the
   student gets a clear error and nbgrader never sees the folder;
2. *skip*: a submission graded before from exactly the same inputs
   (submission, source, settings, helpers) is not graded again;
3. *autograde*: nbgrader executes a copy in ``autograded/`` and records the
   scores in the gradebook;
4. *verify*: the submission's files must be byte for byte what they were;

then feedback HTML for everyone graded, and the grades CSV.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import nbgrader_cli
from .late import apply_due_date
from .stamps import digest, matches, record
from .config import (AUTOGRADED, FEEDBACK, GRADEBOOK, GRADES_CSV, ROOT, SOURCE, SUBMITTED, CourseError,
                     check_assignment, helper_paths)

FINGERPRINT_FILE = ".graded-from"
# Inputs besides the submission, source/ and the helpers that change a grade when they
# change. Only these: a regrade flags every hand-graded answer for review again, so
# settings that do not affect scores (the Colab repository, say) must not trigger one.
GRADING_INPUTS = ("nbgrader_config.py", "course/bonus.py")


@dataclass(frozen=True)
class Outcome:
    student: str
    assignment: str
    status: str  # "graded", "up to date" or "error"
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "error"


def students(assignment: str) -> list[str]:
    if not SUBMITTED.is_dir():
        return []
    return sorted(p.name for p in SUBMITTED.iterdir() if (p / assignment).is_dir())


def fingerprint(assignment: str, student: str) -> str:
    inputs = [SUBMITTED / student / assignment, SOURCE / assignment]
    return digest(inputs + [ROOT / name for name in GRADING_INPUTS] + helper_paths())


def check_notebooks(folder: Path, expected: set[str] | None = None) -> str | None:
    """Why the submission cannot be graded, or None if every notebook reads and validates.

    ``expected`` are the notebook file names of the assignment: a submission with none
    of them (a renamed "Copy of ..." say) is reported rather than silently scored 0.
    """
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        return f"{folder.relative_to(ROOT)} holds no notebook"
    if expected and not expected & {p.name for p in notebooks}:
        return (f"{folder.relative_to(ROOT)} has {', '.join(p.name for p in notebooks)} but not "
                f"{', '.join(sorted(expected))}: rename the notebook to grade it")
    for path in notebooks:
        name = path.relative_to(ROOT)
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # nbformat raises JSON, Unicode and version errors
            return f"{name} is not a valid notebook (not valid JSON, or not a notebook): {exc}"
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as exc:
            return f"{name} is not a valid notebook: {exc.message}"
    return None


def autograde(assignment: str, student: str, force: bool = False) -> Outcome:
    submission = SUBMITTED / student / assignment
    problem = check_notebooks(submission, {p.name for p in (SOURCE / assignment).glob("*.ipynb")})
    if problem:
        return Outcome(student, assignment, "error", problem)

    before = digest([submission])
    stamp = fingerprint(assignment, student)
    stamp_file = AUTOGRADED / student / assignment / FINGERPRINT_FILE
    if not force and matches(stamp_file, stamp) and _recorded(assignment, student):
        return Outcome(student, assignment, "up to date")

    result = nbgrader_cli.run("autograde", assignment, f"--student={student}", "--force", check=False)
    note = ""
    if not result.ok and digest([submission]) == before:
        # One more try: on a loaded machine a kernel can fail to start. A submission that
        # fails for its own reasons (a kernel it kills, say) fails the same way again.
        note = f" (second try; the first failed: {'; '.join(result.errors()[-1:])})"
        result = nbgrader_cli.run("autograde", assignment, f"--student={student}", "--force", check=False)
    if digest([submission]) != before:
        _discard(assignment, student)  # scores from a run that changed its own input are void
        return Outcome(student, assignment, "error",
                       "the submission changed while it was graded; its scores were discarded")
    if not result.ok:
        reason = "; ".join(result.errors()[-3:]) or result.log.strip()[-500:]
        return Outcome(student, assignment, "error", f"nbgrader could not grade it: {reason}")
    record(stamp_file, stamp)
    return Outcome(student, assignment, "graded", note.strip())


def _recorded(assignment: str, student: str) -> bool:
    from .scores import read  # scores imports this module

    return read(assignment, student) is not None


def _discard(assignment: str, student: str) -> None:
    """Remove one submission's grading results: gradebook entry, autograded copy, feedback."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{GRADEBOOK}") as gb:
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
    for folder in (AUTOGRADED / student / assignment, FEEDBACK / student / assignment):
        shutil.rmtree(folder, ignore_errors=True)


def register(assignment: str) -> None:
    """Make the gradebook know the assignment's current tests before anything is graded.

    nbgrader grades against the test cells it recorded when it last generated the
    assignment. Whenever source/ changed since then (or the gradebook is new), the
    assignment is generated again, into a scratch folder so release/ stays untouched.
    """
    stamp_file = AUTOGRADED / f".registered-{assignment}"
    stamp = _source_stamp(assignment)
    if GRADEBOOK.exists() and matches(stamp_file, stamp):
        return
    with tempfile.TemporaryDirectory(prefix="register-") as scratch:
        result = nbgrader_cli.run("generate_assignment", assignment, "--force",
                                  f"--CourseDirectory.release_directory={scratch}", check=False)
    if not result.ok:
        if "Cannot add or remove cells" in result.log:
            raise CourseError(
                f"the gradebook holds graded submissions of {assignment}, and source/{assignment} now has "
                "other graded or locked cells than when they were graded. nbgrader refuses to change an "
                "assignment under recorded grades. Restore the cells, or, to start over, export the grades "
                "(grades.csv) and move gradebook.db away."
            )
        raise CourseError(f"could not register {assignment} in the gradebook: {'; '.join(result.errors()[-3:])}")
    record(stamp_file, stamp)


def _source_stamp(assignment: str) -> str:
    return digest([SOURCE / assignment, ROOT / "nbgrader_config.py"])


def grade(assignment: str, only: list[str] | None = None, force: bool = False) -> list[Outcome]:
    """Autograde the submissions of ``assignment`` (all, or the students in ``only``)."""
    check_assignment(assignment)
    register(assignment)
    apply_due_date(assignment)
    available = students(assignment)
    missing = sorted(set(only or []) - set(available))
    if missing:
        raise CourseError(f"no submission of {assignment} in submitted/ for: {', '.join(missing)}")
    outcomes = [autograde(assignment, student, force) for student in (only or available)]
    graded = [o.student for o in outcomes if o.ok]
    stale = [s for s in graded if not (FEEDBACK / s / assignment).is_dir()] + [
        o.student for o in outcomes if o.status == "graded"
    ]
    if stale:
        pattern = graded[0] if len(graded) == 1 else "*"
        nbgrader_cli.run("generate_feedback", assignment, f"--student={pattern}", "--force")
        _keep_only_pages(assignment)
    return outcomes


def _keep_only_pages(assignment: str) -> None:
    """nbgrader copies every other file of the autograded folder into feedback/ (data,
    whatever the student's code wrote, our stamps): students get the HTML pages only."""
    for folder in FEEDBACK.glob(f"*/{assignment}"):
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file() and path.suffix != ".html":
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def export_csv(path: Path = GRADES_CSV) -> Path:
    """grades.csv: autograded, bonus, written (graded or pending) and late points apart (course/export.py)."""
    from .export import write_grades  # export reads scores, which imports this module

    return write_grades(path)
