"""The worker's side of grading: one submission in (a Job), one Result out, never raising.

``grade_one`` runs on a pool worker (course/engine/pool.py: this process, a Dask worker, or a
machine of a cluster) and is a pure step; every failure becomes a result with a status:

1. *check* and *prepare* (course/engine/prepare.py): a clear error for a submission that is
   not a valid notebook; otherwise its notebooks, with the registered cells put back and the
   tamper guards added, and a scratch folder with the assignment's data;
2. *run* (course/engine/run_notebook.py): the notebooks execute inside the sandbox
   (course/engine/sandbox.py), under limits and a deadline, each cell a dying kernel cannot
   take the others with it (course/engine/execute.py); the results come back on a pipe.
   The runner is launched before step 1 and starts its kernel meanwhile
   (course/engine/launch.py): a submission's fixed cost is not paid one step after another;
3. *read*: the executed notebooks are validated, the guard cells interpreted and removed,
   and limits hit, kernel deaths and the deadline named in the message.

Nothing here writes the gradebook, ``autograded/`` or ``feedback/``: the parent records each
Result (course/engine/recording.py). The submission itself is only ever read; a submission
that changes while it is graded is not recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from .. import cells
from ..config import HELPERS, Layout, Limits
from . import sandbox
from ..cells import DIED, OUT_OF_TIME, STUCK
from .jobs import Job, Result, Status
from .launch import Launched, Run
from .scratch import scratch_folder
from ..files import digest
from ..variants import GRADER_ID

# Checking, preparing and reading notebooks needs nbformat (0.14 s to import): it loads, with
# course/engine/prepare.py, once the runner is launched, while that starts.

UNSAFE_NOTE = "UNSAFE: graded without a sandbox (--unsafe); student code ran with the grader's rights"
STARTUP_TIMEOUT = 120  # seconds a kernel may take to start
MAX_RESTARTS = 3  # kernel deaths a notebook may survive (course/engine/execute.py)
MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc")
# Environment variables of the grader that the kernel gets too (a course-wide switch, say).
PASSED_ON = ("COURSE_NO_PROGRESS",)
# How every kernel runs, so that the same inputs give the same scores (course/receipts.py):
# on the CPU (the sandbox shows no GPU; utils.get_device reads COURSE_DEVICE, and CUDA is
# hidden for --unsafe runs on a machine that has one), with one thread, and with a fixed hash
# seed (the order of sets of strings; every other seed is set by the notebooks and tests).
KERNEL = {"COURSE_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
          "PYTHONHASHSEED": "0"}


def grade_one(job_json: str) -> str:
    """Grade one submission on a worker: a Job as JSON in, a Result as JSON out. Never raises."""
    job = Job.from_json(job_json)
    start = time.perf_counter()
    try:
        result = _grade_one(job)
    except Exception as exc:  # a bug of the grader itself: still one result, the batch goes on
        result = Result(job.student, job.assignment, Status.ERROR, f"the grader failed: {type(exc).__name__}: {exc}")
    result.fingerprint = job.fingerprint
    result.ran_on = ran_on()
    result.seconds = round(time.perf_counter() - start, 2)
    if job.unsafe:
        result.message = "; ".join(m for m in (result.message, UNSAFE_NOTE) if m)
    return result.to_json()


def ran_on() -> dict[str, str]:
    """How this worker's kernels run (KERNEL), and on what: for the receipt of each grade."""
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                    if line.startswith("model name")), "")
    return {"device": KERNEL["COURSE_DEVICE"], "threads": KERNEL["OMP_NUM_THREADS"],
            "hash_seed": KERNEL["PYTHONHASHSEED"], "python": f"{platform.python_implementation()} "
            f"{platform.python_version()}", "machine": platform.machine(), "cpu": cpu or platform.processor()}


def _grade_one(job: Job) -> Result:
    submission = Layout(Path(job.root)).submission(job.student, job.assignment)
    with (tempfile.TemporaryDirectory(prefix=f"grade-{job.assignment}-") as tmp,
          contextlib.nullcontext() if job.unsafe else sandbox.sandbox_uid() as uid):
        scratch = Path(tmp) / "course"
        scratch.mkdir()
        work = scratch_folder(job, scratch, uid)
        # The runner and its kernel start while the submission is checked and prepared.
        with _launch(job, scratch, work, Path(tmp) / "ipython", uid) as launched:
            from .prepare import check_submission, prepare

            before = digest([submission])
            problem = check_submission(submission, {f"{n}.ipynb" for n in job.notebooks}, job.max_notebook_mb)
            if problem:
                return Result(job.student, job.assignment, Status.ERROR, problem)
            prepared = prepare(job, str(scratch if job.unsafe else sandbox.INSIDE))
            run = launched.finish(prepared.notebooks, job.limits.wall_s)
    if digest([submission]) != before:
        return Result(job.student, job.assignment, Status.ERROR,
                      "the submission changed while it was graded; its scores were discarded")
    return _read(job, prepared, run)


def _environment(home: Path, work: Path, job: Job) -> dict[str, str]:
    """The whole environment of the run: nothing of the grader's own (secrets, paths) leaks in.

    The kernel computes the variant of the **submitting** student (``job.student``, the
    submission's folder), whatever id the notebook typed (utils/variant.py)."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": f"{home}/home", "PYTHONPATH": str(home),
           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", **KERNEL,
           "LANG": "C.UTF-8", "JUPYTER_RUNTIME_DIR": f"{home}/home/runtime", "IPYTHONDIR": f"{home}/ipython",
           "JUPYTER_PLATFORM_DIRS": "1",
           # As nbgrader's autograding: notebooks skip their hand-in cell and progress bars.
           "NBGRADER_EXECUTION": "autograde",
           # Shorter demonstration runs, which no test reads (utils/quick.py).
           "COURSE_QUICK": "1",
           **job.variants, GRADER_ID: job.student}
    env.update({k: os.environ[k] for k in PASSED_ON if k in os.environ})
    return env


def _binds(job: Job, ipython: Path) -> dict[str, Path]:
    """What the sandbox sees read-only under /course besides its scratch folder: the course's
    code (for the runner), the helpers the notebooks import, and an empty IPython folder (a
    kernel started after a death would otherwise run start-up files the submission wrote)."""
    root = Path(job.root)
    binds = {"course": root / "course", "ipython": ipython}
    binds.update({name: root / name for name in HELPERS if (root / name).exists()})
    return binds


def _launch(job: Job, scratch: Path, work: Path, ipython: Path, uid: int | None) -> Launched:
    """Start the runner in the sandbox (or, ``--unsafe``, under limits only) with everything
    but the notebooks (course/engine/launch.py)."""
    limits = job.limits
    ipython.mkdir()
    binds = _binds(job, ipython)
    if job.unsafe:
        for inside, outside in binds.items():  # the helpers, where the kernel's PYTHONPATH finds them
            (scratch / inside).symlink_to(outside)
        home, cwd = scratch, work
    else:
        home, cwd = sandbox.INSIDE, sandbox.INSIDE / work.relative_to(scratch)
    env = _environment(home, cwd, job)
    head = {"cwd": str(cwd), "timeout": limits.cell_s, "startup_timeout": STARTUP_TIMEOUT,
            "max_restarts": MAX_RESTARTS,
            "deadline": time.time() + limits.wall_s - min(20.0, limits.wall_s / 10) if limits.wall_s else 0.0}
    inner = [sys.executable, "-m", "course.engine.run_notebook"]
    if job.unsafe:
        return Launched([*sandbox.prlimit(limits), *inner], env, scratch, head, polite=True)
    env[sandbox.SANDBOXED] = "1"  # course/engine/execute.py ends the submission's leftover processes
    return Launched(sandbox.command(inner, scratch, binds, limits, env, uid),
                    {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None, head)


def _read(job: Job, prepared, run: Run) -> Result:
    """The Result of a run (``prepared``: course/engine/prepare.py's ``Prepared``): validated
    notebooks without guard cells, the status, what to say."""
    import nbformat

    from . import guards

    notes, flags, notebooks = list(prepared.notes), list(prepared.flags), {}
    status = Status.GRADED
    if run.timed_out:
        status = Status.LIMIT
        notes.append(f"wall-clock limit of {job.limits.wall_s} s exceeded: what did not finish scores zero")
    elif not run.started or run.error:
        return Result(job.student, job.assignment, Status.ERROR, f"not graded: {run.error}")
    elif prepared.notebooks and not run.notebooks:
        # The runner holds the results on a pipe the kernel cannot reach; only a process of
        # the submission (same uid) can have stopped it before it answered.
        flags.append("the grader's run inside the sandbox was stopped before it handed back results")
        notes.append("nothing came back from the run: every test scores zero")
    for name, text in run.notebooks.items():
        if name not in prepared.notebooks:
            flags.append(f"the run handed back a notebook it was not given ({name[:50]!r})")
            continue
        try:
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
        except Exception as exc:
            flags.append(f"the graded {name}.ipynb came back malformed ({type(exc).__name__}); it scores zero")
            continue
        flags += guards.interpret(nb, prepared.token)
        status = _notes_on(nb, job.limits, notes, status)
        notebooks[name] = json.dumps(nb)  # validated above, and again where it is recorded
    if flags:
        status = Status.FLAGGED
    return Result(job.student, job.assignment, status, "; ".join(notes), list(dict.fromkeys(flags)), notebooks)


def _notes_on(nb, limits: Limits, notes: list[str], status: Status) -> Status:
    """Add what the report says about one executed notebook; returns the status."""
    if nb.metadata.pop("course_execution_error", None):
        notes.append("the notebook could not be run to its end: the test cells that did not run score zero")
    hit = _limit_hit(nb, limits)
    if hit:
        status = Status.LIMIT
        notes.append(hit)
    late = next(iter(_with_error(nb, OUT_OF_TIME)), None)
    if late:
        status = Status.LIMIT
        notes.append(f"wall-clock limit of {limits.wall_s} s reached: the cell running then was interrupted, "
                     f"'{late}' and the cells after it did not run (zero), the scores before are kept")
    for ename, what in ((DIED, "Kernel died in cell '{}': a fresh kernel ran the cells after it (they lack "
                               "what the dead kernel held), and the scores before it are kept"),
                        (STUCK, "cell '{}' ran past the cell timeout and ignored the interrupt: a fresh kernel "
                                "ran the cells after it (they lack what the old kernel held), the scores "
                                "before are kept")):
        notes += [what.format(cell) for cell in _with_error(nb, ename)]
    stopped = None if late else _stopped_at(nb)
    if stopped:
        notes.append(f"the kernel stopped in or after cell '{stopped}': the test cells after it score zero")
    return status


def _limit_hit(nb, limits: Limits) -> str | None:
    """The first sandbox limit the run hit, as a message naming the cell."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = " ".join([out.get("ename", ""), out.get("evalue", ""),
                             out.get("text", "") if out.get("output_type") == "stream" else ""])
            if any(m in text for m in MEMORY_ERRORS):
                return f"memory limit {limits.memory_mb / 1024:g} GiB exceeded in cell '{cells.name(cell)}'"
            if "File too large" in text:
                return f"file size limit {limits.file_size_mb} MiB exceeded in cell '{cells.name(cell)}'"
            if "Resource temporarily unavailable" in text or "can't start new thread" in text:
                return f"process limit ({limits.pids}) reached in cell '{cells.name(cell)}'"
    return None


def _with_error(nb, ename: str) -> list[str]:
    """The code cells with an error output of this name (course/engine/execute.py writes them)."""
    return [cells.name(c) for c in nb.cells if c.cell_type == "code"
            and any(o.get("ename") == ename for o in c.get("outputs", []) if o.get("output_type") == "error")]


def _stopped_at(nb) -> str | None:
    """The cell after which nothing ran (the kernel died or exited), or None."""
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    ran = [i for i, c in enumerate(code) if c.get("execution_count") is not None]
    if not code or (ran and ran[-1] == len(code) - 1):
        return None
    return cells.name(code[ran[-1] + 1]) if ran else cells.name(code[0])
