"""Where grading time goes, as ratios measured in one run (absolute times on shared machines are noise).

For each assignment, in a scratch copy of the course:
  exec   executing the instructor notebook directly (nbclient), and its heaviest cell;
  grade  autograding the `correct` sample through the course pipeline (nbgrader);
  skip   grading it again with nothing changed (the pipeline skips it).
Run and grade alternate for a few rounds; prints the medians, grade/exec (the median of
each round's ratio: what grading costs over running), the fixed cost (the median of each
round's grade - exec: what grading one submission adds, start-up of the course command
included), grade/skip (what an unchanged re-run saves) and timeout/heaviest cell (headroom
of the cell timeout). Both run the demonstrations shortened (utils/quick.py), as grading
does, so that they do the same work; with --full the plain run is at full length (the time a
student waits for the whole notebook), and grade/exec then shows what quick runs save.

    python benchmarks/bench_grading.py [ASSIGNMENT ...] [--rounds N] [--full]
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
from course import config  # noqa: E402

PARTS = config.COURSE_FILES


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def execute(notebook: Path) -> tuple[float, float, str]:
    """Wall time of a full run, and the duration and id of its slowest cell."""
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=True,
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
                slowest_id = cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id", "?"))
    return total, slowest, slowest_id


def course(root: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(root), "COURSE_NO_PROGRESS": "1"}
    subprocess.run([sys.executable, "-m", "course", *args], cwd=root, env=env, check=True, capture_output=True)


def main(names: list[str], rounds: int, full: bool = False) -> None:
    timeout = config.settings().grading.limits.cell_s
    # The kernel of the plain run gets what the grader's kernel gets (course/engine/worker.py):
    # one thread, no progress bars, no display, shortened demonstrations; otherwise the two would
    # not run the same work.
    os.environ.update(COURSE_NO_PROGRESS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
                      COURSE_QUICK="0" if full else "1")
    print("plain run at full length; grading with quick demonstration runs" if full
          else "plain run and grading both with quick demonstration runs")
    print(f"{rounds} interleaved rounds each; medians")
    print(f"{'assignment':<12} {'exec s':>7} {'grade s':>8} {'skip s':>7} {'grade/exec':>11} {'fixed s':>8} "
          f"{'grade/skip':>11} {'slowest cell':>24} {'timeout/slowest':>16}")
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            root = Path(tmp)
            for part in PARTS:
                src = ROOT / part
                if not src.exists():
                    continue
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / part)
            notebook = next((root / "source" / name).glob("*.ipynb"))
            os.environ["PYTHONPATH"] = str(root)  # the kernel imports the copy's helpers, as in grading
            course(root, "samples", name)
            course(root, "grade", name, "--student", "correct")  # registers the assignment too
            execs, grades, ratios, fixed, slowest = [], [], [], [], []
            for _ in range(rounds):  # interleaved, so that a change of load hits both alike
                exec_s, slow_s, slowest_id = execute(notebook)
                grade_s = timed(lambda: course(root, "grade", name, "--student", "correct", "--force"))
                execs.append(exec_s), grades.append(grade_s), ratios.append(grade_s / exec_s)
                fixed.append(grade_s - exec_s)
                slowest.append(slow_s)
            skip_s = timed(lambda: course(root, "grade", name, "--student", "correct"))
        exec_s, grade_s, slow_s = median(execs), median(grades), max(slowest)
        print(f"{name:<12} {exec_s:7.1f} {grade_s:8.1f} {skip_s:7.1f} {median(ratios):11.2f} {median(fixed):8.2f} "
              f"{grade_s / skip_s:11.1f} {f'{slow_s:.2f} s ({slowest_id})':>24} {timeout / slow_s:16.0f}")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: all")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of run and grade (default 3)")
    parser.add_argument("--full", action="store_true", help="run the notebook at full length (utils/quick.py)")
    args = parser.parse_args()
    main(args.assignments or config.assignments(), args.rounds, args.full)
