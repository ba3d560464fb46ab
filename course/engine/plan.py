"""The parent's side of grading, before any worker runs: what to grade, and the gradebook ready.

* ``register``: nbgrader grades against the test cells it recorded when it last generated the
  assignment; whenever ``source/`` changed since then (or the gradebook is new), the
  assignment is generated again into a scratch folder (``release/`` stays untouched);
* ``jobs``: one Job per submission whose inputs changed since it was graded. The inputs are
  the submission, the assignment's ``source/`` folder, the helper code the notebooks import
  and the settings that change a score (``fingerprint``); a submission is skipped only when
  its stamp matches and the gradebook holds its score.

Deciding needs no nbgrader: the notebooks of an assignment are the notebooks of its
``source/`` folder, which ``register`` keeps the gradebook in step with. So the grader starts
the first sandbox before the gradebook's code has even loaded (course/commands/grade.py).
"""

from __future__ import annotations

import hashlib
import tempfile

from ..config import LAYOUT, ROOT, SOURCE, SUBMITTED, CourseError, Layout, helper_paths, settings
from .. import files as stamps
from .. import variants
from .jobs import Job, Outcome, Status

# Inputs besides the submission, source/ and the helpers that change a grade when they
# change. Only these: a regrade flags every hand-graded answer for review again, so
# settings that do not affect scores (the Colab repository, say) must not trigger one.
GRADING_INPUTS = ("nbgrader_config.py", "course/plugins/bonus.py")


def students(assignment: str) -> list[str]:
    """Who handed in the assignment: the folders ``submitted/<student>/<assignment>/``."""
    if not SUBMITTED.is_dir():
        return []
    return sorted(p.name for p in SUBMITTED.iterdir() if (p / assignment).is_dir())


def notebooks(assignment: str) -> tuple[str, ...]:
    """The assignment's notebook names (without .ipynb): those of its source/ folder."""
    return tuple(sorted(p.stem for p in (SOURCE / assignment).glob("*.ipynb")))


def fingerprint(assignment: str, student: str) -> str:
    inputs = [SUBMITTED / student / assignment, SOURCE / assignment]
    stamp = stamps.digest(inputs + [ROOT / name for name in GRADING_INPUTS] + helper_paths())
    # The variant settings change which numbers are right: a new salt, or variants switched
    # off, grades again. An assignment without variants keeps the stamp it always had.
    key = variants.stamp_key(assignment, settings().variants)
    return hashlib.sha256(f"{stamp}\0{key}".encode()).hexdigest() if key else stamp


def jobs(assignment: str, who: list[str], force: bool, unsafe: bool) -> tuple[list[Job], list[Outcome]]:
    """The submissions to grade, and the outcomes of those skipped as up to date."""
    cfg = settings().grading
    names = notebooks(assignment)
    todo, skipped = [], []
    for student in who:
        stamp = fingerprint(assignment, student)
        if not force and stamps.matches(LAYOUT.graded_stamp(student, assignment), stamp) \
                and _recorded(assignment, student):
            skipped.append(Outcome(student, assignment, Status.UP_TO_DATE))
            continue
        todo.append(Job(str(ROOT), assignment, student, stamp, unsafe, cfg.limits, cfg.max_notebook_mb, names,
                        settings().variants.kernel_environment()))
    return todo, skipped


def _recorded(assignment: str, student: str) -> bool:
    from ..gradebook import read

    return read(assignment, student) is not None


def register(assignment: str, out: Layout = LAYOUT) -> None:
    """Make the gradebook know the assignment's current cells before anything is recorded
    (``out``: the records to register in: the course's, or a regrade's staging copy)."""
    from .. import nbgrader_cli

    stamp_file = registered_stamp(assignment, out)
    stamp = stamps.digest([SOURCE / assignment, ROOT / "nbgrader_config.py"])
    if out.gradebook.exists() and stamps.matches(stamp_file, stamp):
        return
    with tempfile.TemporaryDirectory(prefix="register-") as scratch:
        result = nbgrader_cli.run("generate_assignment", assignment, "--force",
                                  f"--CourseDirectory.release_directory={scratch}",
                                  f"--CourseDirectory.db_url=sqlite:///{out.gradebook}", check=False)
    if not result.ok:
        if "Cannot add or remove cells" in result.log:
            raise CourseError(
                f"the gradebook holds graded submissions of {assignment}, and source/{assignment} now has "
                "other graded or locked cells than when they were graded. nbgrader refuses to change an "
                "assignment under recorded grades. Restore the cells, or, to start over, export the grades "
                "(grades.csv) and move gradebook.db away."
            )
        raise CourseError(f"could not register {assignment} in the gradebook: {'; '.join(result.errors()[-3:])}")
    stamps.record(stamp_file, stamp)


def registered_stamp(assignment: str, out: Layout = LAYOUT):
    """What the gradebook's registration of the assignment was made from."""
    return out.autograded / f".registered-{assignment}"

