"""``course grade``: autograde what was handed in, record it, write feedback and grades.csv.

The parent's steps, around the pool (course/engine/pool.py) that runs the workers' side:

1. refuse without a sandbox (unless ``--unsafe``), register the assignment's cells in the
   gradebook when source/ changed (course/engine/plan.py);
2. decide what to grade: every submission whose inputs changed (``--force``: all);
3. as each result arrives, record it (course/engine/recording.py, the single writer) and
   write that student's feedback pages, while the workers grade the next submissions; log its
   status and time (course/engine/outcome_log.py, read by the dashboard);
4. print the score table and the summary, and write grades.csv.

While the first submission runs in its sandbox, a thread gets recording ready (``_Recorder``:
nbgrader's code, the due date, the pages' templates), so a single submission does not wait
for that.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import replace

from ..config import FEEDBACK, GRADES_CSV, LAYOUT, ROOT, CourseError, check_assignment
from ..engine import outcome_log, plan, pool, sandbox
from ..engine.jobs import Job, Outcome, Status


def refuse_without_sandbox(unsafe: bool) -> None:
    if unsafe:
        return
    why = sandbox.problem()
    if why:
        raise CourseError(f"cannot sandbox student code here: {why}. Grading runs every submission in a "
                          "bubblewrap sandbox; install it (make venv prints how), or pass --unsafe to grade "
                          "without one (student code then runs with your rights).")


class _Recorder:
    """Records each result and writes its feedback pages: the parent, as results arrive.

    A thread gets recording ready while the first submission runs in its sandbox: it loads
    nbgrader, its configuration and the page exporter (about a second), writes the due date
    into the gradebook (the late penalty needs it) and renders the release once
    (``feedback.warm_up``), so that a single submission does not wait for that after its run.
    Recording waits for the thread; if it failed, recording does the same work and reports
    its error with the submission."""

    def __init__(self, assignment: str):
        self.assignment = assignment
        self.ready = threading.Lock()
        self.due_date_written = False

    def start(self) -> None:
        self.ready.acquire()
        threading.Thread(target=self._get_ready, daemon=True, name="ready to record").start()

    def _get_ready(self) -> None:
        _lower_priority()
        try:
            from ..engine import recording
            from ..plugins import feedback

            recording.warm_up()
            self._due_date()
            feedback.warm_up(self.assignment)
        except Exception:  # recording does it again, and reports it
            pass
        finally:
            self.ready.release()

    def _due_date(self) -> None:
        from ..gradebook import apply_due_date

        if not self.due_date_written:
            apply_due_date(self.assignment)
            self.due_date_written = True

    def __call__(self, result_json: str, job: Job) -> Outcome:
        from ..engine.recording import accept
        from ..plugins.feedback import write_pages

        with self.ready:
            self._due_date()
            outcome = accept(result_json, job)
            if outcome.ok:
                try:
                    write_pages(job.assignment, job.student)
                except Exception as exc:  # recorded all the same: say so, `course feedback` writes them again
                    note = f"its feedback page could not be written ({type(exc).__name__}: {exc})"
                    outcome = replace(outcome, message="; ".join(m for m in (outcome.message, note) if m))
            return outcome


def _lower_priority() -> None:
    """Give this thread the lowest CPU priority (Linux: a thread's nice value is its own). While
    the sandbox's kernel starts, the machine's cores are short; the kernel and its first cells
    go first, and getting ready, which has until the run ends, takes what is left (measured:
    mnist's fixed cost 0.44 -> 0.35 s, median of 12 interleaved rounds)."""
    if sys.platform == "linux":  # elsewhere the id of a thread is not one setpriority takes
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _logged(progress):
    """Each outcome into the grading log (course/engine/outcome_log.py: status and time, for the
    dashboard) as it arrives, then to ``progress``."""
    def seen(outcome: Outcome) -> None:
        outcome_log.append(outcome)
        if progress:
            progress(outcome)

    return seen


def grade(assignment: str, only: list[str] | None = None, force: bool = False, workers: int | None = None,
          scheduler: str | None = None, unsafe: bool = False, progress=None) -> list[Outcome]:
    """Autograde the submissions of ``assignment`` (all, or the students in ``only``)."""
    check_assignment(assignment)
    refuse_without_sandbox(unsafe)
    plan.register(assignment)
    available = plan.students(assignment)
    missing = sorted(set(only or []) - set(available))
    if missing:
        raise CourseError(f"no submission of {assignment} in submitted/ for: {', '.join(missing)}")
    todo, outcomes = plan.jobs(assignment, only or available, force, unsafe)
    record = _Recorder(assignment)
    if todo:
        record.start()
    progress = _logged(progress)
    for outcome in outcomes:
        progress(outcome)
    outcomes += pool.grade_all(todo, workers, scheduler, record, progress)
    _pages_missing(assignment, outcomes)
    return outcomes


def _pages_missing(assignment: str, outcomes: list[Outcome]) -> None:
    """Pages for submissions skipped as up to date whose pages are gone (feedback/ deleted)."""
    from ..plugins.feedback import write_pages

    for outcome in outcomes:
        if outcome.status is Status.UP_TO_DATE and not any(LAYOUT.pages(outcome.student, assignment).glob("*.html")):
            write_pages(assignment, outcome.student)


def run(names: list[str], only: list[str] | None, force: bool, workers: int | None = None,
        scheduler: str | None = None, unsafe: bool = False) -> list[Outcome]:
    """Grade several assignments, one after the other, with a progress bar each."""
    if only:
        unknown = sorted(set(only) - {s for n in names for s in plan.students(n)})
        if unknown:
            raise CourseError(f"no submission in submitted/ for: {', '.join(unknown)} "
                              f"(assignments: {', '.join(names)})")
    outcomes = []
    for name in names:
        who = [s for s in plan.students(name) if not only or s in only]
        if not who:
            print(f"{name}: no submissions in submitted/")
            continue
        start = time.perf_counter()
        print(f"{name}: grading {len(who)} submission(s) ...", flush=True)
        bar = pool.Progress(len(who), sys.stdout, sys.stderr)
        try:
            outcomes += grade(name, who, force=force, workers=workers, scheduler=scheduler, unsafe=unsafe,
                              progress=bar)
        finally:
            bar.close()
        print(f"  done in {time.perf_counter() - start:.0f} s")
    return outcomes


def report(names: list[str], outcomes: list[Outcome], unsafe: bool = False) -> None:
    """The score table, the summary, the flagged submissions, and grades.csv."""
    from ..gradebook import submissions
    from .export import write_grades
    from .scores import table

    everyone = sorted({s for n in names for s in plan.students(n)})
    scores = submissions()  # read once, for the table and grades.csv
    print()
    print(table(names, everyone, outcomes, scores))
    if outcomes:
        print()
        print(pool.summary(outcomes))
    flagged = [o for o in outcomes if o.status is Status.FLAGGED]
    if flagged:
        from ..review import standing

        print("\nFlagged for review. A held grade counts nowhere (no total in grades.csv or the LMS export, no "
              "score on the feedback page) until a person decides: `python -m course review`; the formgrader "
              "shows the evidence on top of the notebook.")
        for o in flagged:
            now = standing(o.student, o.assignment)
            state = "HELD" if now.held else now.describe() or "not held"
            print(f"  {o.student}/{o.assignment} [{state}]: {'; '.join(o.flags)}")
    if any(o.ok for o in outcomes):
        if any(o.ok and o.status is not Status.UP_TO_DATE for o in outcomes) or not GRADES_CSV.exists():
            write_grades(scores=scores)
        print(f"\nfeedback (HTML): {FEEDBACK.relative_to(ROOT)}/<student>/<assignment>/")
        print(f"grades (CSV):    {GRADES_CSV.relative_to(ROOT)}")
    if unsafe:
        from ..engine.worker import UNSAFE_NOTE

        print(f"\n{UNSAFE_NOTE}")
