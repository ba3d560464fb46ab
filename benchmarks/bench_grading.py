"""Where grading time goes, as ratios measured in one run (absolute times on shared machines are noise).

For each assignment, in a scratch copy of the course:
  exec   executing the instructor notebook directly (nbclient), and its heaviest cell;
  grade  autograding the `correct` sample through the course pipeline (nbgrader);
  batch  autograding N copies of it under other student ids in one command, one worker
         (``--workers 1``): a class's grading, where the command starts once;
  skip   grading it again with nothing changed (the pipeline skips it).
Run and grade alternate for a few rounds; prints the medians, grade/exec (the median of
each round's ratio: what grading costs over running), the fixed cost (the median of each
round's grade - exec: what grading one submission adds, start-up of the course command
included), the same two per submission of the batch (batch/N over exec, and batch/N - exec),
grade/skip (what an unchanged re-run saves) and timeout/heaviest cell (headroom of the cell
timeout). The copy's modules are compiled first (``compile_once``). Both run the
demonstrations shortened (utils/quick.py), as grading does, and both kill the kernel once
the last cell has run (nbclient's graceful shutdown, 1.4 to 2.4 s with torch loaded, is no
part of running a notebook), so that they do the same work; with --full the plain run is at
full length (the time a student waits for the whole notebook), and grade/exec then shows
what quick runs save.

    python benchmarks/bench_grading.py [ASSIGNMENT ...] [--rounds N] [--batch N] [--full]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import median

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course import cells, config  # noqa: E402

PARTS = config.COURSE_FILES


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def execute(notebook: Path) -> tuple[float, float, str]:
    """Wall time of a full run, and the duration and id of its slowest cell."""
    nb = nbformat.read(notebook, as_version=4)
    # The kernel is killed after the last cell, as grading does (course/engine/execute.py): its
    # graceful shutdown (1.4 to 2.4 s with torch) is no part of running the notebook.
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=True, shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(notebook.parent)}})
    total = timed(client.execute)
    slowest, slowest_id = 0.0, ""
    for cell in nb.cells:
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            if (end - start).total_seconds() > slowest:
                slowest = (end - start).total_seconds()
                slowest_id = cells.name(cell)
    return total, slowest, slowest_id


def course(root: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(root), "COURSE_NO_PROGRESS": "1"}
    subprocess.run([sys.executable, "-m", "course", *args], cwd=root, env=env, check=True, capture_output=True)


def compile_once(root: Path) -> None:
    """Compile the copy's Python modules (the course's code, the helpers, the hidden tests), as
    the first command in a course folder does. A machine that sets PYTHONDONTWRITEBYTECODE (this
    one does, as many container images do) never keeps them, and every process, the grader's,
    the sandbox's and the kernel's, compiles them again: 0.05 to 0.1 s per command that is no
    part of grading. Python reads cached bytecode whatever that variable says."""
    folders = [str(root / part) for part in ("course", "utils", "hidden_tests")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True, capture_output=True)


def copies(root: Path, name: str, n: int) -> list[str]:
    """The correct sample handed in again by ``n`` more students (distinct ids, same work)."""
    students = [f"batch-{i}" for i in range(1, n + 1)]
    for student in students:
        shutil.copytree(root / "submitted" / "correct" / name, root / "submitted" / student / name)
    return students


def main(names: list[str], rounds: int, full: bool = False, batch: int = 3) -> None:
    timeout = config.settings().grading.limits.cell_s
    # The kernel of the plain run gets what the grader's kernel gets (course/engine/worker.py):
    # one thread, no progress bars, no display, shortened demonstrations; otherwise the two would
    # not run the same work.
    os.environ.update(COURSE_NO_PROGRESS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
                      COURSE_QUICK="0" if full else "1")
    print("plain run at full length; grading with quick demonstration runs" if full
          else "plain run and grading both with quick demonstration runs")
    print(f"{rounds} interleaved rounds each; medians; batches of {batch} on one worker")
    print(f"{'assignment':<12} {'exec s':>7} {'grade s':>8} {'grade/exec':>11} {'fixed s':>8} "
          f"{'batch/N/exec':>13} {'batch fixed s':>14} {'skip s':>7} {'grade/skip':>11} {'slowest cell':>24} "
          f"{'timeout/slowest':>16}")
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            root = Path(tmp)
            for part in PARTS:
                src = ROOT / part
                if not src.exists():
                    continue
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / part)
            compile_once(root)
            notebook = next((root / "source" / name).glob("*.ipynb"))
            os.environ["PYTHONPATH"] = str(root)  # the kernel imports the copy's helpers, as in grading
            course(root, "samples", name)
            course(root, "grade", name, "--student", "correct")  # registers the assignment too
            who = [arg for student in copies(root, name, batch) for arg in ("--student", student)]
            r = {key: [] for key in ("exec", "grade", "ratio", "fixed", "batch_ratio", "batch_fixed", "slowest")}
            for _ in range(rounds):  # interleaved, so that a change of load hits all alike
                exec_s, slow_s, slowest_id = execute(notebook)
                grade_s = timed(lambda: course(root, "grade", name, "--student", "correct", "--force"))
                batch_s = timed(lambda: course(root, "grade", name, *who, "--force", "--workers", "1")) / batch
                for key, value in (("exec", exec_s), ("grade", grade_s), ("ratio", grade_s / exec_s),
                                   ("fixed", grade_s - exec_s), ("batch_ratio", batch_s / exec_s),
                                   ("batch_fixed", batch_s - exec_s), ("slowest", slow_s)):
                    r[key].append(value)
            skip_s = timed(lambda: course(root, "grade", name, "--student", "correct"))
        m = {key: median(values) for key, values in r.items()}
        slowest = max(r["slowest"])
        print(f"{name:<12} {m['exec']:7.1f} {m['grade']:8.1f} {m['ratio']:11.2f} {m['fixed']:8.2f} "
              f"{m['batch_ratio']:13.2f} {m['batch_fixed']:14.2f} {skip_s:7.1f} {m['grade'] / skip_s:11.1f} "
              f"{f'{slowest:.2f} s ({slowest_id})':>24} {timeout / slowest:16.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: all")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of run and grade (default 3)")
    parser.add_argument("--batch", type=int, default=3, help="submissions in the one-worker batch (default 3)")
    parser.add_argument("--full", action="store_true", help="run the notebook at full length (utils/quick.py)")
    args = parser.parse_args()
    main(args.assignments or config.assignments(), args.rounds, args.full, args.batch)
