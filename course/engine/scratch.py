"""The scratch folder a submission's kernel runs in, made before the submission is read.

It holds the assignment's data files (``work/``, the kernel's working folder) and a home
that holds nothing but matplotlib's list of the system's fonts (``font_cache``), all owned
by the sandbox's uid: the only place the sandbox may write. The worker (course/engine/worker.py)
makes it first, so that the runner can start its kernel there while the submission is
checked and prepared (course/engine/prepare.py); nothing of the submission is in it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from importlib import util
from pathlib import Path

from ..config import Layout
from .jobs import Job

# Files of source/<assignment>/ that are not data for the notebooks.
NOT_DATA = ("*.ipynb", "make_*.py", "*.pyc", "__pycache__", ".ipynb_checkpoints", "feedback")


def scratch_folder(job: Job, scratch: Path, uid: int | None) -> Path:
    """The folder the kernel runs in (the assignment's data files) under ``scratch``, with an
    empty home, owned by ``uid``; returns the kernel's working folder."""
    layout = Layout(Path(job.root))
    work = scratch / "work"
    shutil.copytree(layout.source / job.assignment, work, ignore=shutil.ignore_patterns(*NOT_DATA), symlinks=False)
    (scratch / "home").mkdir()
    fonts = font_cache()
    if fonts:  # where matplotlib looks for it in this home (no XDG_CACHE_HOME, no MPLCONFIGDIR)
        folder = scratch / "home" / ".cache" / "matplotlib"
        folder.mkdir(parents=True)
        shutil.copy(fonts, folder / fonts.name)
    _own(scratch, uid)
    for path in [scratch, *scratch.rglob("*")]:
        if path.is_dir():
            os.chmod(path, 0o755)
    return work


def _own(path: Path, uid: int | None) -> None:
    """Hand a scratch folder to the sandbox's uid (the only place it may write)."""
    if uid is None:
        return
    for folder, _, files in os.walk(path):
        os.chown(folder, uid, uid)
        for name in files:
            os.chown(os.path.join(folder, name), uid, uid)


@cache
def font_cache() -> Path | None:
    """matplotlib's list of the system's fonts, as a kernel with an empty home builds it.

    Every graded kernel starts with an empty home, where importing matplotlib first scans the
    system's fonts and writes that list (a quarter of a second per submission, which a
    student's own machine pays once). It is built once per machine and environment, in a
    process whose home is empty as the sandbox's is (no user's fonts), kept in the grader's
    cache folder, and copied into each scratch home. None where matplotlib is not installed
    or the list cannot be built: the kernel then builds its own, as before."""
    # Which matplotlib, found without importing it or importlib.metadata (a fifth of a second
    # and a fiftieth, before each command's first sandbox starts): another install is another key.
    spec = util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return None
    key = hashlib.sha256(f"{sys.prefix}\0{spec.origin}\0{os.stat(spec.origin).st_mtime_ns}".encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "course-pack" / f"fonts-{key}"
    found = sorted(folder.glob("fontlist-*.json")) if folder.is_dir() else []
    if found:
        return found[-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as home:
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=True, timeout=120,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "MPLBACKEND": "Agg",
                                "MPLCONFIGDIR": home, "LANG": "C.UTF-8"}, capture_output=True)
            built = sorted(Path(home).glob("fontlist-*.json"))
            if not built:
                return None
            os.replace(built[-1], folder / built[-1].name)  # atomic: a worker beside this one reads it whole
    except (OSError, subprocess.SubprocessError):
        return None
    return folder / built[-1].name
