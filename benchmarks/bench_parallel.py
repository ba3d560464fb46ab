"""Parallel speed-up and sandbox overhead of `course grade`, as ratios measured in one run.

A scratch copy of the one-notebook mini course (tests/test_grading_edge_cases.py) gets
K honest submissions whose first answer imports torch (like every real assignment). The
same batch is graded, interleaved over R rounds, with --force each time:

  serial    --workers 1            (sandboxed, one after the other)
  parallel  --workers N            (sandboxed, a Dask LocalCluster of N processes)
  bare      --workers 1 --unsafe   (no sandbox; same scratch course, same limits)

Prints speed-up = serial / parallel (goal >= 0.8 N) and sandbox overhead =
serial / bare - 1 (goal <= 10 %), from the medians.

    python benchmarks/bench_parallel.py [--submissions K] [--workers N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from conftest import copy_course, course_env  # noqa: E402
from course import cells  # noqa: E402
from test_grading_edge_cases import SOLUTIONS, mini_notebook  # noqa: E402


def build(dest: Path, k: int) -> Path:
    root = copy_course(dest, parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    (root / "source" / "mini").mkdir(parents=True)
    nbformat.write(mini_notebook(), root / "source" / "mini" / "mini.ipynb")
    subprocess.run([sys.executable, "-m", "course", "release", "mini"], cwd=root, env=course_env(root), check=True,
                   capture_output=True)
    released = nbformat.read(root / "release" / "mini" / "mini.ipynb", as_version=4)
    for i in range(k):
        nb = nbformat.from_dict(released)
        for cell in nb.cells:
            gid = cells.grade_id(cell)
            if gid in SOLUTIONS:
                cell.source = ("import torch\nvalue = int(torch.tensor(42))" if gid == "answer" else SOLUTIONS[gid])
        folder = root / "submitted" / f"student{i:02d}" / "mini"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "mini.ipynb")
    return root


def grade(root: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "course", "grade", "mini", "--force", *args], cwd=root,
                          env=course_env(root), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or re.search(r"^  \S+\s+error", proc.stdout, re.M):
        raise SystemExit(f"grading failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submissions", type=int, default=8)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    modes = {"serial": ["--workers", "1"], "parallel": ["--workers", str(args.workers)],
             "bare": ["--workers", "1", "--unsafe"]}
    times = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        root = build(Path(tmp), args.submissions)
        grade(root, "--workers", "1")  # registers the assignment; warms the file cache
        for r in range(args.rounds):
            for mode, extra in (modes.items() if r % 2 == 0 else reversed(modes.items())):
                times[mode].append(grade(root, *extra))
                print(f"round {r + 1} {mode:<9} {times[mode][-1]:6.1f} s", flush=True)
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"\n{args.submissions} submissions, {args.workers} workers, {os.cpu_count()} cores, {args.rounds} rounds")
    print(f"speed-up, {args.workers} workers over 1: {med['serial'] / med['parallel']:.2f}x "
          f"(goal >= {0.8 * args.workers:.1f}x)")
    print(f"sandbox overhead over bare execution: {100 * (med['serial'] / med['bare'] - 1):+.1f} % (goal <= 10 %)")


if __name__ == "__main__":
    main()
