"""Grading into a staging copy of the records: a regrade's preview, and ``course verify``.

``stage`` grades submissions again, with the pool and the workers that grading uses, into a
folder that holds a copy of the course's records: the gradebook (its registrations, written
answers and overrides), the review log, and the receipts and skip stamps of the recorded
grades. The recording (course/engine/recording.py, ``accept(..., out=staging)``) writes only
there; the course's gradebook, ``autograded/``, ``feedback/`` and review log are only read.
Each result is also kept as it came back from its worker, with its Job (``results.jsonl``),
so that applying a staged regrade records exactly what was shown, without grading again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import LAYOUT, Layout
from ..gradebook import apply_due_date
from . import plan, pool
from .jobs import Job, Outcome, Result
from .recording import accept

RESULTS = "results.jsonl"


@dataclass(frozen=True)
class Staged:
    """One submission graded into staging: the Job and the worker's result as it came back."""

    job: Job
    result_json: str

    @property
    def recorded(self) -> bool:
        """Whether staging recorded it (an error is reported, never recorded)."""
        try:
            return Result.from_json(self.result_json).status.recorded
        except ValueError:
            return False


def _copy_gradebook(source: Path, dest: Path) -> None:
    """A consistent copy, even while someone reads the gradebook (SQLite's own backup)."""
    with sqlite3.connect(source) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def open_staging(folder: Path, assignment: str, course: Layout = LAYOUT) -> Layout:
    """A fresh staging folder (anything in it before is removed) holding copies of the
    course's records of ``assignment``."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out = Layout(folder)
    if course.gradebook.exists():
        _copy_gradebook(course.gradebook, out.gradebook)
    if course.review_log.is_file():
        shutil.copyfile(course.review_log, out.review_log)
    registered = plan.registered_stamp(assignment, course)
    if registered.is_file():
        out.autograded.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(registered, plan.registered_stamp(assignment, out))
    for graded in sorted(course.autograded.glob(f"*/{assignment}")):
        student = graded.parent.name
        for path in (course.receipt(student, assignment), course.graded_stamp(student, assignment)):
            if path.is_file() and not path.is_symlink():
                target = out.root / path.relative_to(course.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    return out


def stage(assignment: str, students: list[str], folder: Path, workers: int | None = None,
          scheduler: str | None = None, unsafe: bool = False,
          progress: Callable[[Outcome], None] | None = None) -> tuple[Layout, list[Outcome]]:
    """Grade these students' submissions again into a fresh staging folder; returns its records
    and the outcomes."""
    out = open_staging(folder, assignment)
    plan.register(assignment, out)
    apply_due_date(assignment, out.gradebook)
    jobs, _ = plan.jobs(assignment, students, force=True, unsafe=unsafe)

    def record(result_json: str, job: Job) -> Outcome:
        with open(out.root / RESULTS, "a") as handle:
            handle.write(json.dumps({"job": job.to_json(), "result": result_json}) + "\n")
        return accept(result_json, job, out)

    return out, pool.grade_all(jobs, workers, scheduler, record, progress)


def staged(folder: Path) -> list[Staged]:
    """The results kept in a staging folder, the last of each student (none if it has none)."""
    path = folder / RESULTS
    if not path.is_file():
        return []
    found = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            item = Staged(Job.from_json(entry["job"]), entry["result"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short: that submission is graded again
        found[item.job.student] = item
    return list(found.values())
