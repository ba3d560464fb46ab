"""Shared test helpers: a disposable copy of the course, and running the course CLI in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # tests draw figures without a display

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course.config import COURSE_FILES  # noqa: E402

# What a course needs to generate, build samples and grade; grading output is left behind.
COURSE_PARTS = COURSE_FILES


def copy_course(dest: Path, parts=COURSE_PARTS) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for part in parts:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def course_env(root: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(root), "COURSE_NO_PROGRESS": "1"}
    env["COURSE_OFFLINE"] = "1"  # never download in tests: the MNIST notebooks use the shipped data
    env.pop("NBGRADER_EXECUTION", None)
    return env


def run_course(root: Path, *args: str, check: bool = True, timeout: float = 1200) -> subprocess.CompletedProcess:
    """``python -m course ARGS`` in the course at ``root``; its own course package and utils are used."""
    proc = subprocess.run(
        [sys.executable, "-m", "course", *args], cwd=root, env=course_env(root),
        capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"course {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def course_copy(tmp_path) -> Path:
    return copy_course(tmp_path)


# -- order: the longest groups first ---------------------------------------------------------
# `make test` runs on two workers that take whole xdist groups (--dist loadgroup) in the order
# of this list (--no-loadscope-reorder). A long group that starts last leaves one worker alone
# for minutes at the end, so the groups that take longest start first. The seconds come from
# runs on the 2-core machine (pytest --durations) or from the work a group does; they only
# order, so a stale figure costs time, never a result.
LONGEST = {"mutations-landscape": 260, "mutations-mnist": 170, "grade-landscape": 130, "mutations-rosenbrock": 110,
           "grade-hostile": 100, "mutations-optimizers": 100, "grade-autodiff": 90, "grade-review": 90,
           "grade-rosenbrock": 75, "grade-optimizers": 75, "grade-mnist": 70, "mutations-autodiff": 60,
           "grade-mini": 60, "nb-landscape": 60, "grade-limits": 50, "browser": 50, "roundtrip": 40,
           "grade-distributed": 30, "grade-resume": 26, "grade-fbmini": 25, "report": 20}


def _group(item) -> str:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return ""
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", ""))


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -LONGEST.get(_group(item), 0))  # stable: the rest keep their order
