"""The course's command line: ``python -m course <command>`` (or ``course <command>``).

    release [ASSIGNMENT ...]        generate the student versions into release/
    check-release                   fail if release/ differs from a fresh generation
    samples [ASSIGNMENT ...]        write the bundled sample submissions into submitted/
    grade [ASSIGNMENT ...]          autograde submitted/, write feedback/ and grades.csv
    scores                          print the score table from the gradebook
    demo                            release + samples + grade: the whole pipeline
"""

from __future__ import annotations

import argparse
import sys
import time

from . import grading, parallel, release, samples, scores
from .outcome import Status
from .config import FEEDBACK, GRADES_CSV, ROOT, CourseError, assignments, check_assignment


def _names(given: list[str]) -> list[str]:
    return [check_assignment(n) for n in given] if given else assignments()


def cmd_release(args) -> int:
    for name in _names(args.assignments):
        path = release.generate(name)
        print(f"released {name} -> {path.relative_to(ROOT)}")
    return 0


def cmd_check_release(args) -> int:
    problems = release.check(_names(args.assignments))
    for problem in problems:
        print(problem)
    if problems:
        print("release/ is out of date: run `make release` and commit the result.")
        return 1
    print("release/ matches a fresh generation from source/")
    return 0


def cmd_samples(args) -> int:
    for name in _names(args.assignments):
        paths = samples.build(name)
        print(f"{name}: {len(paths)} sample submission(s) in submitted/")
    return 0


def _grade(names: list[str], only: list[str] | None, force: bool, workers: int | None = None,
           scheduler: str | None = None, unsafe: bool = False) -> list[grading.Outcome]:
    if only:
        unknown = sorted(set(only) - {s for n in names for s in grading.students(n)})
        if unknown:
            raise CourseError(f"no submission in submitted/ for: {', '.join(unknown)} "
                              f"(assignments: {', '.join(names)})")
    outcomes = []
    for name in names:
        who = [s for s in grading.students(name) if not only or s in only]
        if not who:
            print(f"{name}: no submissions in submitted/")
            continue
        start = time.perf_counter()
        print(f"{name}: grading {len(who)} submission(s) ...", flush=True)
        bar = parallel.Progress(len(who), sys.stdout, sys.stderr)
        try:
            results = grading.grade(name, who, force=force, workers=workers, scheduler=scheduler,
                                    unsafe=unsafe, progress=bar)
        finally:
            bar.close()
        print(f"  done in {time.perf_counter() - start:.0f} s")
        outcomes += results
    return outcomes


def _report(names: list[str], outcomes: list[grading.Outcome]) -> None:
    everyone = sorted({s for n in names for s in grading.students(n)})
    print()
    print(scores.table(names, everyone, outcomes))
    if outcomes:
        print()
        print(parallel.summary(outcomes))
    if any(o.status is Status.FLAGGED for o in outcomes):
        print("\nFlagged for review (scores recorded; nbgrader's formgrader shows them flagged):")
        for o in outcomes:
            if o.status is Status.FLAGGED:
                print(f"  {o.student}/{o.assignment}: {'; '.join(o.flags)}")
    if any(o.ok for o in outcomes):
        if any(o.ok and o.status is not Status.UP_TO_DATE for o in outcomes) or not GRADES_CSV.exists():
            grading.export_csv()
        print(f"\nfeedback (HTML): {FEEDBACK.relative_to(ROOT)}/<student>/<assignment>/")
        print(f"grades (CSV):    {GRADES_CSV.relative_to(ROOT)}")


def cmd_grade(args) -> int:
    names = _names(args.assignments)
    outcomes = _grade(names, args.student, args.force, args.workers, args.scheduler, args.unsafe)
    _report(names, outcomes)
    if args.unsafe:
        print(f"\n{grading.UNSAFE_NOTE}")
    return 1 if any(not o.ok for o in outcomes) and args.strict else 0


def cmd_scores(args) -> int:
    names = _names(args.assignments)
    print(scores.table(names, sorted({s for n in names for s in grading.students(n)})))
    return 0


def cmd_demo(args) -> int:
    names = assignments()
    for name in names:
        state = "up to date"
        if not release.is_current(name):
            release.generate(name)
            state = "regenerated"
        built = samples.build(name)
        print(f"{name}: release/ {state}, {len(built)} sample submission(s) in submitted/")
    outcomes = _grade(names, None, args.force, args.workers, None, args.unsafe)
    _report(names, outcomes)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help, assignments=True):
        s = sub.add_parser(name, help=help)
        if assignments:
            s.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")
        s.set_defaults(func=func)
        return s

    add("release", cmd_release, "generate the student versions into release/")
    add("check-release", cmd_check_release, "fail if release/ differs from a fresh generation")
    add("samples", cmd_samples, "write the bundled sample submissions into submitted/")
    g = add("grade", cmd_grade, "autograde submitted/, write feedback/ and grades.csv")
    g.add_argument("--student", action="append", help="grade only this student (repeatable)")
    g.add_argument("--force", action="store_true", help="grade again even if nothing changed")
    g.add_argument("--strict", action="store_true", help="exit 1 if any submission could not be graded")
    _pool_options(g)
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on an existing Dask cluster (tcp://host:8786) instead of this machine")
    add("scores", cmd_scores, "print the score table from the gradebook")
    d = add("demo", cmd_demo, "release, build the sample submissions and grade them", assignments=False)
    d.add_argument("--force", action="store_true", help="grade again even if nothing changed")
    _pool_options(d)
    return p


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--workers must be 1 or more")
    return value


def _pool_options(sub) -> None:
    sub.add_argument("--workers", type=_workers, metavar="N",
                     help="submissions graded at once (default: course.toml [grading] workers, else all cores)")
    sub.add_argument("--unsafe", action="store_true",
                     help="grade without the bubblewrap sandbox (student code runs with your rights)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
