"""course/engine/launch.py and run_notebook.py: the runner starts its kernel before it is
given the notebooks, runs them when they come, and leaves nothing running when it is
stopped before.

These run the runner without the sandbox (as ``--unsafe`` does), where its kernel has a
session of its own: the cases where a kernel could outlive its runner. In the sandbox,
bwrap's process namespace ends everything anyway (tests/test_sandbox.py)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course.config import ROOT
from course.engine.launch import Launched

RUNNER = [sys.executable, "-m", "course.engine.run_notebook"]


def head(folder: Path) -> dict:
    return {"cwd": str(folder), "timeout": 60, "startup_timeout": 60, "max_restarts": 0, "deadline": 0.0}


def environment(folder: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}


def kernels_of(pid: int) -> list[int]:
    """The live processes jupyter_client started as kernels of process ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"JPY_PARENT_PID={pid}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float = 60.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


def notebook(*sources) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.writes(nb)


pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")


def test_the_kernel_starts_before_the_notebooks_come_and_runs_them(tmp_path):
    with Launched(RUNNER, environment(tmp_path), tmp_path, head(tmp_path), polite=True) as launched:
        kernels = wait_for(lambda: kernels_of(launched.proc.pid))
        assert kernels, "no kernel was started before the notebooks were sent"
        run = launched.finish({"one": notebook("import os\nprint(6 * 7, os.getcwd())")}, 120)
    assert run.started and not run.error and not run.timed_out
    outputs = nbformat.reads(run.notebooks["one"], as_version=4).cells[0].outputs
    assert outputs[0]["text"].split() == ["42", str(tmp_path)]  # in the folder of the head
    assert not kernels_of(launched.proc.pid), "the kernel outlived its run"


def test_a_second_notebook_runs_in_a_fresh_kernel(tmp_path):
    with Launched(RUNNER, environment(tmp_path), tmp_path, head(tmp_path), polite=True) as launched:
        run = launched.finish({"one": notebook("x = 1"), "two": notebook("print('x' in dir())")}, 120)
    assert list(run.notebooks) == ["one", "two"]
    assert nbformat.reads(run.notebooks["two"], as_version=4).cells[0].outputs[0]["text"].strip() == "False"


def test_a_runner_stopped_before_its_notebooks_leaves_no_kernel_running(tmp_path):
    """What happens when the submission turns out not to be gradable (course/engine/worker.py)."""
    launched = Launched(RUNNER, environment(tmp_path), tmp_path, head(tmp_path), polite=True)
    kernels = wait_for(lambda: kernels_of(launched.proc.pid))
    assert kernels
    launched.stop()
    assert launched.proc.returncode is not None
    assert not kernels_of(launched.proc.pid), "the kernel started ahead is still running"


def test_a_runner_that_cannot_start_is_reported(tmp_path):
    with Launched([sys.executable, "-c", "import sys; sys.exit('no runner here')"], environment(tmp_path),
                  tmp_path, head(tmp_path)) as launched:
        run = launched.finish({"one": notebook("1")}, 60)
    assert not run.started and "no runner here" in run.error
