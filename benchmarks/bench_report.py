"""How long ``python -m course report`` takes for a class of 300 graded submissions (goal: 60 s
on the 2-core machine).

The class is synthetic but graded for real: every sample submission graded by ``make demo``
(this checkout's gradebook and ``autograded/``; with ``--grade``, or where there is none, the
samples are graded here first, in a copy, which takes minutes) is recorded again under new
student ids by the course's own writer (course/engine/recording.py ``record``), with its
graded notebooks and its grading-log line, until the class holds ``--submissions`` of them
across the five assignments. A third of the copies get their written answers graded, so the
page has both graded and pending answers. Then ``course report`` (every assignment's page and
CSV, and the index) runs once in a fresh process, timed by the wall clock; the load average
is printed next to it, because the machine is shared.

    .venv/bin/python benchmarks/bench_report.py [--submissions 300] [--assignment NAME] [--grade]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 60.0


def _env(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(root), "COURSE_NO_PROGRESS": "1", "COURSE_OFFLINE": "1"}


def _course(root: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "course", *args], cwd=root, env=_env(root), check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _copy_course(dest: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from course.config import COURSE_FILES

    dest.mkdir(parents=True, exist_ok=True)
    for part in COURSE_FILES:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        elif src.exists():
            shutil.copy2(src, dest / part)


def graded_samples(reuse: bool, scratch: Path) -> Path:
    """A course root whose gradebook holds the graded samples: this checkout after ``make demo``
    (``reuse``), else a copy in ``scratch`` graded here."""
    if reuse and (ROOT / "gradebook.db").exists() and any((ROOT / "autograded").glob("*/*/*.ipynb")):
        return ROOT
    print("grading the samples in a copy (`make demo` first lets this reuse them) ...", flush=True)
    _copy_course(scratch)
    _course(scratch, "samples")
    print(f"  graded in {_course(scratch, 'grade'):.0f} s", flush=True)
    return scratch


def build(source: Path, total: int, only: str | None) -> None:
    """Run inside the synthetic course (the current folder): record ``total`` submissions copied
    from the graded samples of ``source`` (of the assignment ``only``, if given)."""
    sys.path.insert(0, str(Path.cwd()))
    import nbformat

    from course.config import LAYOUT, Layout
    from course.engine import outcome_log, plan
    from course.engine.jobs import Outcome
    from course.engine.recording import record
    from course.files import write_atomic
    from course.gradebook import submissions

    logged = outcome_log.latest(Layout(source))
    graded = [s for s in submissions(source / "gradebook.db") if only in (None, s.assignment)]
    copies = math.ceil(total / len(graded))
    made = 0
    for assignment in sorted({s.assignment for s in graded}):
        plan.register(assignment)
    for i in range(copies):
        for score in graded:
            if made == total:
                return
            folder = source / "autograded" / score.student / score.assignment
            notebooks = {p.stem: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}
            student = f"{score.student}-{i:03d}"
            entry = logged.get((score.student, score.assignment))
            recorded = record(score.assignment, student, notebooks, bool(entry and entry.flags), None)
            out = LAYOUT.graded(student, score.assignment)
            out.mkdir(parents=True, exist_ok=True)
            for name, nb in recorded.items():
                write_atomic(out / f"{name}.ipynb", nbformat.writes(nb))
            if entry is not None:
                outcome_log.append(Outcome(student, score.assignment, entry.status, entry.message, entry.flags,
                                           entry.seconds * (0.8 + 0.4 * ((i * 37 + made) % 11) / 10)))
            if i % 3 == 0:
                _grade_written(score.assignment, student, (i + made) % 3 / 2)
            made += 1
            if made % 50 == 0:
                print(f"  {made} submissions recorded", flush=True)


def _grade_written(assignment: str, student: str, share: float) -> None:
    """A person gives every written answer of the submission ``share`` of its points."""
    from course.gradebook import open_gradebook

    with open_gradebook() as gb:
        for snb in gb.find_submission(assignment, student).notebooks:
            answers = {c.name for c in snb.notebook.solution_cells}
            for grade in snb.grades:
                if grade.name in answers:
                    grade.manual_score = grade.max_score * share
                    grade.needs_manual_grade = False
        gb.db.commit()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submissions", type=int, default=300)
    p.add_argument("--assignment", help="all submissions of this one assignment (default: the samples of all five)")
    p.add_argument("--grade", action="store_true", help="grade the samples in a copy even if this checkout has them")
    p.add_argument("--build", metavar="SOURCE", help=argparse.SUPPRESS)  # the step run inside the copy
    args = p.parse_args()
    if args.build:
        build(Path(args.build), args.submissions, args.assignment)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        source = graded_samples(not args.grade, Path(tmp) / "samples")
        course = Path(tmp) / "class"
        course.mkdir()
        _copy_course(course)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--build", str(source),
                        "--submissions", str(args.submissions), *(["--assignment", args.assignment] if args.assignment
                                                                  else [])], cwd=course, env=_env(course), check=True)
        print(f"built a class of {args.submissions} graded submissions in {time.perf_counter() - start:.0f} s")
        load = os.getloadavg()[0]
        seconds = _course(course, "report")
        after = os.getloadavg()[0]
        pages = sorted(p.name for p in (course / "reports").glob("*.html"))
        size = max(p.stat().st_size for p in (course / "reports").glob("*.html")) / 2**20
        counts = [json.loads(line)["status"] for line in (course / "autograded" / "grading-log.jsonl").open()]
        what = f"{args.assignment} only" if args.assignment else "all assignments"
        print(f"course report, {args.submissions} submissions of {what} ({len(counts)} logged), {len(pages)} pages "
              f"(largest {size:.1f} MiB): {seconds:.1f} s, {seconds / GOAL_S:.2f} of the {GOAL_S:.0f} s goal "
              f"(one run; load average {load:.1f} before, {after:.1f} after, on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
