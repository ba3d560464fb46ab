"""kill -9 the grader mid-batch, then run it again: nothing recorded is lost or half-written,
and submissions finished before the kill are not graded again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from conftest import course_env, run_course
from test_grading_hostile import FULL, _make_course, _scores

pytestmark = pytest.mark.xdist_group("grade-resume")

STUDENTS = {f"s{i}": {} for i in range(5)}


# Two workers: a Dask cluster of worker processes. One: this process grades the next
# submission in a thread while it records the last (course/engine/pool.py).
@pytest.mark.parametrize("workers", ["2", "1"])
def test_kill_minus_9_then_rerun_keeps_every_recorded_grade(tmp_path, workers):
    root, _ = _make_course(tmp_path, STUDENTS)
    run_course(root, "release", "mini")  # registered before the clock starts
    proc = subprocess.Popen([sys.executable, "-m", "course", "grade", "mini", "--workers", workers], cwd=root,
                            env=course_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    finished = []
    deadline = time.monotonic() + 600
    for line in proc.stdout:
        match = re.match(r"  (s\d)\s+graded", line)
        if match:
            finished.append(match.group(1))
            if len(finished) == 2:
                break
        assert time.monotonic() < deadline
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers and sandboxes must not outlive it
    proc.wait()
    assert len(finished) == 2

    leftovers = [p for p in root.rglob("*") if p.name.endswith(".partial")]
    assert not leftovers, leftovers
    for student in finished:
        assert _scores(root, student) == FULL
        assert nbformat.read(root / "autograded" / student / "mini" / "mini.ipynb", as_version=4).cells

    again = run_course(root, "grade", "mini", "--workers", "2", timeout=900).stdout
    for student in STUDENTS:
        status = "up to date" if student in finished else "graded"
        assert re.search(rf"  {student}\s+{status}", again), again
        assert _scores(root, student) == FULL
    time.sleep(2)
    stray = [p for p in os.listdir("/proc") if p.isdigit() and _mentions(p, str(root))]
    assert not stray, "processes of the killed grader are still running"


def _mentions(pid: str, text: str) -> bool:
    try:
        return text in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return False
