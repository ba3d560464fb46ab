"""Run many grading steps at once on a Dask cluster, and record each result as it arrives.

The unit of work is ``grading.grade_one``: a Job as JSON in, a Result as JSON out. It
runs on a Dask worker (a process of a ``LocalCluster`` on this machine by default, or of
any cluster whose scheduler address is given: several machines, or a Slurm allocation
through ``dask_jobqueue.SLURMCluster``, see README). The sandbox runs on the worker.

The parent never shares the gradebook with a worker: ``accept`` (the only writer) records
each result as it completes, so a grader killed mid-batch keeps every result recorded so
far and the next run skips those submissions. With one worker, or one job, no cluster is
started: the jobs run one after the other in this process (each is a sandboxed subprocess
anyway).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .outcome import Outcome, Status


def default_workers() -> int:
    from .config import settings

    return settings().grading.workers or os.cpu_count() or 1


def grade_all(jobs: list, workers: int | None, scheduler: str | None,
              accept: Callable[[str, object], Outcome], progress: Callable[[Outcome], None] | None = None
              ) -> list[Outcome]:
    from .grading import grade_one

    if not jobs:
        return []
    workers = workers or default_workers()
    outcomes = []

    def done(result_json: str, job) -> None:
        try:
            outcome = accept(result_json, job)
        except Exception as exc:  # recording failed (a locked gradebook, a full disk): the batch goes on
            outcome = Outcome(job.student, job.assignment, Status.ERROR,
                              f"its result could not be recorded ({type(exc).__name__}: {exc}); grade it again")
        outcomes.append(outcome)
        if progress:
            progress(outcome)

    # A pool pays off only for two jobs or more: starting a LocalCluster and its worker
    # processes costs about 2 s, a fifth of grading one short notebook.
    if (workers == 1 or len(jobs) == 1) and not scheduler:
        for job in jobs:
            done(grade_one(job.to_json()), job)
        return outcomes

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        # One thread per worker process: each task waits on a sandboxed subprocess.
        cluster = LocalCluster(n_workers=min(workers, len(jobs)), threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)  # any free port: no clash with another cluster
        client = Client(cluster)
    try:
        futures = {client.submit(grade_one, job.to_json(), pure=False, key=f"grade-{job.assignment}-{job.student}-{i}"):
                   job for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            job = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a worker lost (killed, out of memory): the batch goes on
                outcome = Outcome(job.student, job.assignment, Status.ERROR, f"its grading worker failed: {exc}")
                outcomes.append(outcome)
                if progress:
                    progress(outcome)
                continue
            done(result, job)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return outcomes


class Progress:
    """One line per graded submission on ``out``; a bar with the ETA on ``bar`` when it is a terminal."""

    def __init__(self, total: int, out, bar=None):
        self.total, self.out, self.done = total, out, 0
        self.bar = bar if bar is not None and bar.isatty() else None
        self.start = time.perf_counter()

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        note = f": {outcome.message}" if outcome.message else ""
        flags = f" [review: {'; '.join(outcome.flags)}]" if outcome.flags else ""
        if self.bar:
            self.bar.write("\r\033[K")
        self.out.write(f"  {outcome.student:<24} {outcome.status.value}{note}{flags}\n")
        self.out.flush()
        if self.bar:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            self.bar.write(f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  ETA {eta:.0f} s")
            self.bar.flush()

    def close(self) -> None:
        if self.bar:
            self.bar.write("\r\033[K")
            self.bar.flush()


def summary(outcomes: list[Outcome]) -> str:
    """Counts by status: graded, up to date, errors, limits hit, flagged."""
    counts = {status: sum(o.status is status for o in outcomes) for status in Status}
    labels = [(Status.GRADED, "graded"), (Status.UP_TO_DATE, "up to date"), (Status.ERROR, "errors"),
              (Status.LIMIT, "limits hit"), (Status.FLAGGED, "flagged")]
    header = "  ".join(f"{label:>10}" for _, label in labels)
    values = "  ".join(f"{counts[status]:>10}" for status, _ in labels)
    return f"{header}\n{values}"
