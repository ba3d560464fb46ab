"""Run many grading steps at once on a Dask cluster, and record each result as it arrives.

The unit of work is ``worker.grade_one``: a Job as JSON in, a Result as JSON out. It
runs on a Dask worker (a process of a ``LocalCluster`` on this machine by default, or of
any cluster whose scheduler address is given: several machines, or a Slurm allocation
through ``dask_jobqueue.SLURMCluster``, see README). The sandbox runs on the worker.

The parent never shares the gradebook with a worker: ``accept`` (the only writer) records
each result as it completes, so a grader killed mid-batch keeps every result recorded so
far and the next run skips those submissions. With one worker, or one job, no cluster is
started: the jobs run one after the other from this process (each is a sandboxed subprocess
anyway), the next one running while the last one's result is recorded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future

from ..config import settings
from .jobs import Job, Outcome, Result, Status


def default_workers() -> int:
    return settings().grading.workers or os.cpu_count() or 1


def grade_all(jobs: list[Job], workers: int | None, scheduler: str | None,
              accept: Callable[[str, Job], Outcome], progress: Callable[[Outcome], None] | None = None
              ) -> list[Outcome]:
    """Grade the jobs, calling ``accept`` (the recording) in this process as each result arrives."""
    from .worker import grade_one

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
        _one_after_another(jobs, done)
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


def _one_after_another(jobs: list[Job], done: Callable[[str, Job], None]) -> None:
    """Grade the jobs one at a time, recording each while the next one already runs.

    A thread waits on the next submission's sandbox while this one records the previous
    result and writes its pages (about half a second each), so a batch on one worker pays
    that only once. The thread is a daemon: an interrupted grader does not wait for the
    submission it was running, and the sandbox dies with it (bwrap's ``--die-with-parent``)."""
    from .worker import grade_one

    def ahead(job: Job) -> Future:
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(grade_one(job.to_json()))
            except BaseException as exc:  # grade_one turns failures into results; this is the rest
                future.set_exception(exc)

        threading.Thread(target=run, daemon=True, name=f"grade {job.assignment}/{job.student}").start()
        return future

    running = ahead(jobs[0])
    for i, job in enumerate(jobs):
        try:
            result = running.result()
        except Exception as exc:
            result = Result(job.student, job.assignment, Status.ERROR, f"its grading failed: {exc}").to_json()
        if i + 1 < len(jobs):
            running = ahead(jobs[i + 1])
        done(result, job)


class Progress:
    """One line per graded submission on ``out``; a tqdm bar with the rate and ETA on ``bar``
    (stderr) when it is a terminal (tqdm is not even loaded otherwise: a twentieth of a
    second of every command's start)."""

    def __init__(self, total: int, out, bar=None):
        self.out, self.bar = out, None
        if bar is not None and bar.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=bar, unit="submission", leave=False, dynamic_ncols=True)

    def __call__(self, outcome: Outcome) -> None:
        note = f": {outcome.message}" if outcome.message else ""
        flags = f" [review: {'; '.join(outcome.flags)}]" if outcome.flags else ""
        line = f"  {outcome.student:<24} {outcome.status.value}{note}{flags}"
        if self.bar is None:
            print(line, file=self.out, flush=True)
            return
        self.bar.write(line, file=self.out)
        self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summary(outcomes: list[Outcome]) -> str:
    """Counts by status: graded, up to date, errors, limits hit, flagged."""
    counts = {status: sum(o.status is status for o in outcomes) for status in Status}
    labels = [(Status.GRADED, "graded"), (Status.UP_TO_DATE, "up to date"), (Status.ERROR, "errors"),
              (Status.LIMIT, "limits hit"), (Status.FLAGGED, "flagged")]
    header = "  ".join(f"{label:>10}" for _, label in labels)
    values = "  ".join(f"{counts[status]:>10}" for status, _ in labels)
    return f"{header}\n{values}"
