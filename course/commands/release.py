"""Generate the student versions (release/) from the instructor notebooks (source/).

release/ is committed because Colab opens notebooks from it, so it must
always equal a fresh generation: ``check`` regenerates into a temporary
folder and lists every difference.
"""

from __future__ import annotations

import filecmp
import tempfile
from pathlib import Path

from .. import nbgrader_cli
from ..config import AUTOGRADED, RELEASE, ROOT, SOURCE, assignments, check_assignment
from ..files import digest, matches, record


def generate(assignment: str, release_dir: Path | None = None) -> Path:
    """Run nbgrader generate_assignment; return the folder of the student version.

    A scratch gradebook is used, so releasing never touches the grades: the course
    gradebook learns about changed tests when grading starts (course/engine/plan.py).
    """
    check_assignment(assignment)
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        args = ["generate_assignment", assignment, "--force",
                f"--CourseDirectory.db_url=sqlite:///{Path(scratch) / 'gradebook.db'}"]
        if release_dir is not None:
            args.append(f"--CourseDirectory.release_directory={release_dir}")
        nbgrader_cli.run(*args)
    if release_dir is None:
        record(_stamp_file(assignment), _inputs_stamp(assignment))
    return (release_dir or RELEASE) / assignment


# Everything a student version is generated from; course/ covers the Colab cells.
def _inputs_stamp(assignment: str) -> str:
    return digest([SOURCE / assignment, ROOT / "nbgrader_config.py", ROOT / "course.toml", ROOT / "course"])


def _stamp_file(assignment: str) -> Path:
    return AUTOGRADED / f".released-{assignment}"


def is_current(assignment: str) -> bool:
    """True if release/ was generated here from exactly the current inputs."""
    return (RELEASE / assignment).is_dir() and matches(_stamp_file(assignment), _inputs_stamp(assignment))


def _differences(expected: Path, actual: Path, prefix: str = "") -> list[str]:
    comparison = filecmp.dircmp(expected, actual, ignore=["__pycache__", ".ipynb_checkpoints"])
    problems = [f"missing from release/: {prefix}{name}" for name in comparison.left_only]
    problems += [f"not generated from source/: {prefix}{name}" for name in comparison.right_only]
    _, mismatch, errors = filecmp.cmpfiles(expected, actual, comparison.common_files, shallow=False)
    problems += [f"differs from a fresh generation: {prefix}{name}" for name in mismatch + errors]
    for sub in comparison.common_dirs:
        problems += _differences(expected / sub, actual / sub, f"{prefix}{sub}/")
    return problems


def check(names: list[str] | None = None) -> list[str]:
    """Regenerate into a temporary folder; return how release/ differs (empty: in sync)."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
        tmp = Path(tmp)
        for name in names or assignments():
            fresh = generate(name, release_dir=tmp / "release")
            committed = RELEASE / name
            if not committed.is_dir():
                problems.append(f"release/{name} does not exist: run `make release`")
                continue
            problems += _differences(fresh, committed, f"{name}/")
    return problems
