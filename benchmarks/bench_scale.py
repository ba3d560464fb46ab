"""Grading at class scale: a simulated class, and a cluster of separate Dask processes.

class        copies the bundled samples of every assignment under distinct student ids until
             each assignment has K submissions (correct and mistaken ones in turn), grades
             them all with N local workers, and prints the throughput per worker and the time
             a class of 300 students x 5 assignments would take on 1 to 64 workers (at the
             measured throughput per worker; the parallel speed-up of bench_parallel.py says
             how close to linear adding workers is).
distributed  starts `dask scheduler` and `dask worker` (N worker processes) as separate
             processes, as a user would on several machines, grades the samples of all five
             assignments through `course grade --scheduler`, grades the same samples with the
             local pool in another copy, and compares every cell's score.

    python benchmarks/bench_scale.py class [--per-assignment K] [--workers N]
    python benchmarks/bench_scale.py distributed [--workers N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from conftest import copy_course, course_env  # noqa: E402

from course import config  # noqa: E402

CLASS = 300  # students
ASSIGNMENTS = 5


def course(root: Path, *args: str, timeout: float = 7200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course", *args], cwd=root, env=course_env(root), check=True,
                          capture_output=True, text=True, timeout=timeout)


def with_samples(dest: Path) -> Path:
    root = copy_course(dest)
    course(root, "samples")
    return root


def class_of(root: Path, per_assignment: int) -> int:
    """Copies of the graded-able samples under new ids, K per assignment; returns how many."""
    total = 0
    for assignment in config.assignments():
        samples = sorted(p.parent for p in (root / "submitted").glob(f"*/{assignment}/*.ipynb")
                         if "broken" not in p.parent.parent.name)
        for i in range(per_assignment):
            sample = samples[i % len(samples)]
            folder = root / "submitted" / f"s{i:03d}" / assignment
            folder.mkdir(parents=True)
            for file in sample.glob("*.ipynb"):
                shutil.copy2(file, folder / file.name)
            total += 1
        for sample in samples:  # only the simulated students remain
            shutil.rmtree(sample)
    for empty in (root / "submitted").iterdir():
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()
    return total


def graded_or_flagged(out: str) -> int:
    """Submissions graded or flagged, from the summary table(s) ``course grade`` prints
    (course/engine/pool.py: ``summary``), one per assignment."""
    lines = out.splitlines()
    count = 0
    for header, values in zip(lines, lines[1:]):
        labels = [label.strip() for label in header.split("  ") if label.strip()]
        if labels[:1] == ["graded"] and "flagged" in labels:
            numbers = values.split()
            count += int(numbers[0]) + int(numbers[labels.index("flagged")])
    return count


def simulate_class(per_assignment: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        root = with_samples(Path(tmp))
        for assignment in config.assignments():  # register and release outside the timing
            course(root, "release", assignment)
        total = class_of(root, per_assignment)
        start = time.perf_counter()
        out = course(root, "grade", "--workers", str(workers)).stdout
        seconds = time.perf_counter() - start
    graded = graded_or_flagged(out)
    per_worker = total / seconds / workers * 3600  # submissions per worker-hour
    print(f"{total} submissions ({per_assignment} per assignment, {graded} graded or flagged) with {workers} "
          f"workers: {seconds:.0f} s, {total / seconds * 60:.1f} submissions/min, {per_worker:.0f} per worker-hour")
    print(f"a class of {CLASS} students x {ASSIGNMENTS} assignments ({CLASS * ASSIGNMENTS} submissions):")
    for n in (1, 2, 8, 16, 64):
        print(f"  {n:>3} workers: {CLASS * ASSIGNMENTS / (per_worker * n):6.2f} h (at this throughput per worker)")


def _scores(root: Path) -> dict:
    code = ("import json\nfrom course import gradebook\n"
            "print(json.dumps({f'{s.student}/{s.assignment}': gradebook.cell_scores(s.assignment, s.student) "
            "for s in gradebook.submissions()}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=course_env(root), check=True,
                          capture_output=True, text=True)
    return json.loads(proc.stdout)


def distributed(workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        local = with_samples(Path(tmp) / "local")
        remote = Path(shutil.copytree(local, Path(tmp) / "remote"))
        start = time.perf_counter()
        course(local, "grade", "--workers", str(workers))
        local_s = time.perf_counter() - start
        dask = str(Path(sys.executable).parent / "dask")
        env = course_env(remote)
        file = Path(tmp) / "scheduler.json"
        with open(Path(tmp) / "cluster.log", "w") as log:
            scheduler = subprocess.Popen([dask, "scheduler", "--scheduler-file", str(file), "--port", "0",
                                          "--dashboard-address", ":0"], env=env, stdout=log, stderr=subprocess.STDOUT)
            while not (file.exists() and file.stat().st_size):
                time.sleep(0.1)
            address = json.loads(file.read_text())["address"]
            worker = subprocess.Popen([dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1",
                                       "--no-dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                start = time.perf_counter()
                course(remote, "grade", "--scheduler", address)
                remote_s = time.perf_counter() - start
            finally:
                worker.terminate(), scheduler.terminate()
                worker.wait(), scheduler.wait()
        here, there = _scores(local), _scores(remote)
    differ = sorted(k for k in here.keys() | there.keys() if here.get(k) != there.get(k))
    print(f"{len(here)} submissions of {len(config.assignments())} assignments: local pool {local_s:.0f} s, "
          f"cluster of separate processes ({workers} workers) {remote_s:.0f} s")
    print("every cell's score equal" if not differ else f"scores differ for: {', '.join(differ)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["class", "distributed"])
    parser.add_argument("--per-assignment", type=int, default=12, help="simulated submissions per assignment")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.mode == "class":
        simulate_class(args.per_assignment, args.workers)
    else:
        distributed(args.workers)
