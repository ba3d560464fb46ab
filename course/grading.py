"""Autograde submissions: one submission in, one result out, in a sandbox, many at a time.

Grading one submission (``grade_one``, run by a pool worker, course/parallel.py) is a
pure step. It never raises for anything the submission did: every failure becomes a
result with a status (course/outcome.py):

1. *check*: the submission folder and its notebooks must be real files (no symbolic
   links), readable, valid notebooks of a sane size; otherwise a clear error;
2. *prepare*: a private scratch course holds a copy of the submission (cell metadata
   an editor stripped put back, tamper guards added, course/guards.py), the
   assignment's data files and a scratch gradebook that knows only this assignment;
3. *run*: ``nbgrader autograde`` runs in that scratch course inside the sandbox
   (course/sandbox.py), under limits, killed with everything it started when it ends;
4. *read back*: nbgrader's autograded notebooks, read without following links, are
   returned as JSON with the status, messages and review flags.

The parent alone writes: for each result, as it arrives, the real gradebook
(course/gradebook.py recomputes every score), ``autograded/`` (atomically) and the
skip stamp; then feedback HTML and the grades CSV. A submission whose inputs
(submission, source, settings, helpers) did not change since it was graded is skipped.
The submission file itself is only ever read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from . import gradebook, guards, nbgrader_cli, repair, sandbox
from .config import (AUTOGRADED, FEEDBACK, GRADEBOOK, GRADES_CSV, HELPERS, ROOT, SOURCE, SUBMITTED, CourseError,
                     check_assignment, helper_paths, settings)
from .execute import DIED, OUT_OF_TIME, SANDBOXED, STUCK
from .late import apply_due_date
from .outcome import Outcome, Result, Status
from .stamps import digest, matches, record

FINGERPRINT_FILE = ".graded-from"
# Inputs besides the submission, source/ and the helpers that change a grade when they
# change. Only these: a regrade flags every hand-graded answer for review again, so
# settings that do not affect scores (the Colab repository, say) must not trigger one.
GRADING_INPUTS = ("nbgrader_config.py", "course/bonus.py")
# Files of source/<assignment>/ that nbgrader does not copy into autograded/ (nbgrader_config.py).
NOT_DATA = ("*.ipynb", "make_*.py", "*.pyc", "__pycache__", ".ipynb_checkpoints", "feedback")
UNSAFE_NOTE = "UNSAFE: graded without a sandbox (--unsafe); student code ran with the grader's rights"


def students(assignment: str) -> list[str]:
    if not SUBMITTED.is_dir():
        return []
    return sorted(p.name for p in SUBMITTED.iterdir() if (p / assignment).is_dir())


def fingerprint(assignment: str, student: str) -> str:
    inputs = [SUBMITTED / student / assignment, SOURCE / assignment]
    return digest(inputs + [ROOT / name for name in GRADING_INPUTS] + helper_paths())


def check_notebooks(folder: Path, expected: set[str] | None = None) -> str | None:
    """Why the submission cannot be graded, or None if every notebook reads and validates.

    ``expected`` are the notebook file names of the assignment: a submission with none
    of them (a renamed "Copy of ..." say) is reported rather than silently scored 0.
    """
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        return f"{folder.relative_to(ROOT)} holds no notebook"
    if expected and not expected & {p.name for p in notebooks}:
        return (f"{folder.relative_to(ROOT)} has {', '.join(p.name for p in notebooks)} but not "
                f"{', '.join(sorted(expected))}: rename the notebook to grade it")
    for path in notebooks:
        name = path.relative_to(ROOT)
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # nbformat raises JSON, Unicode and version errors
            return f"{name} is not a valid notebook (not valid JSON, or not a notebook): {exc}"
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as exc:
            return f"{name} is not a valid notebook: {exc.message}"
    return None


def check_submission(folder: Path, expected: set[str], max_mb: int) -> str | None:
    """Why the submission cannot be graded, or None. Nothing is followed through a link:
    a submission folder or notebook that is a symbolic link could point at another
    student's work or an instructor's file."""
    name = folder.relative_to(folder.parents[2]) if len(folder.parents) > 2 else folder
    for path in (folder.parent, folder):
        if path.is_symlink():
            return f"submitted/{name} is a symbolic link (to {os.readlink(path)}), not a folder: not graded"
    links = sorted(p.name for p in folder.iterdir() if p.is_symlink())
    if links:
        return f"submitted/{name} holds symbolic links ({', '.join(links)}): submit the files themselves"
    for path in sorted(folder.glob("*.ipynb")):
        if not path.is_file():
            return f"submitted/{name}/{path.name} is not a regular file"
        size = path.stat().st_size
        if max_mb and size > max_mb * 1024 * 1024:
            return (f"submitted/{name}/{path.name} is {size / 2**20:.0f} MiB, over the {max_mb} MiB limit "
                    "(course.toml [grading] max_notebook_mb): clear its outputs and submit again")
    return check_notebooks(folder, expected)


@dataclass(frozen=True)
class Job:
    """One submission to grade: everything a worker needs, as plain JSON-able values.

    Paths are absolute: a worker on another machine needs the course on a shared file system.
    """

    root: str
    assignment: str
    student: str
    fingerprint: str
    unsafe: bool
    limits: dict
    max_notebook_mb: int
    notebooks: tuple[str, ...]  # notebook names (without .ipynb) registered for the assignment

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        data = json.loads(text)
        data["notebooks"] = tuple(data["notebooks"])
        return cls(**data)


def grade_one(job_json: str) -> str:
    """Grade one submission on a worker: a Job as JSON in, a Result as JSON out. Never raises."""
    job = Job.from_json(job_json)
    start = time.perf_counter()
    try:
        result = _grade_one(job)
    except Exception as exc:  # a bug of the grader itself: still one result, the batch goes on
        result = Result(job.student, job.assignment, Status.ERROR, f"the grader failed: {type(exc).__name__}: {exc}")
    result.fingerprint = job.fingerprint
    result.seconds = round(time.perf_counter() - start, 2)
    if job.unsafe:
        result.message = "; ".join(m for m in (result.message, UNSAFE_NOTE) if m)
    return result.to_json()


def _grade_one(job: Job) -> Result:
    root = Path(job.root)
    submission = root / "submitted" / job.student / job.assignment
    fail = lambda message: Result(job.student, job.assignment, Status.ERROR, message)  # noqa: E731
    expected = {f"{n}.ipynb" for n in job.notebooks}
    problem = check_submission(submission, expected, job.max_notebook_mb)
    if problem:
        return fail(problem)
    before = digest([submission])
    limits = sandbox.Limits(**job.limits)
    with (tempfile.TemporaryDirectory(prefix=f"grade-{job.assignment}-") as tmp,
          contextlib.nullcontext() if job.unsafe else sandbox.sandbox_uid() as uid):
        tmp = Path(tmp)
        scratch, inputs = tmp / "course", tmp / "inputs"
        notes, flags, token = _prepare(job, root, submission, scratch, inputs, uid)
        timed_out, rc, log = _run(job, root, scratch, inputs, limits, tmp / "nbgrader.log", uid)
        if rc != 0 and not timed_out and not _read_notebooks(scratch, job) and not _its_own_fault(log):
            notes.append(f"second try; the first failed: {'; '.join(nbgrader_cli.Result([], rc, log).errors()[-1:])}")
            shutil.rmtree(scratch / "autograded", ignore_errors=True)
            (scratch / "autograded").mkdir()
            _own(scratch / "autograded", uid)
            timed_out, rc, log = _run(job, root, scratch, inputs, limits, tmp / "nbgrader.log", uid)
        texts = _read_notebooks(scratch, job)
    if digest([submission]) != before:
        return fail("the submission changed while it was graded; its scores were discarded")
    status, notebooks = Status.GRADED, {}
    if timed_out:
        status = Status.LIMIT
        notes.append(f"wall-clock limit of {limits.wall_s} s exceeded: what did not finish scores zero")
    for name, text in texts.items():
        try:
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # the sandbox wrote something that is not a notebook
            flags.append(f"the graded {name}.ipynb came back malformed ({type(exc).__name__}); it scores zero")
            continue
        flags += guards.interpret(nb, token)
        hit = _limit_hit(nb, limits)
        if hit:
            status = Status.LIMIT
            notes.append(hit)
        late = _first_with_error(nb, OUT_OF_TIME)
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
        died = None if late else _stopped_at(nb)
        if died:
            notes.append(f"the kernel stopped in or after cell '{died}': the test cells after it score zero")
        notebooks[name] = nbformat.writes(nb)
    if not notebooks and not timed_out:
        reason = "; ".join(nbgrader_cli.Result([], rc, log).errors()[-3:]) or log.strip()[-500:]
        if not _its_own_fault(log):
            return fail(f"nbgrader could not grade it: {reason}")
        # Its code killed the kernel or hung it past the cell timeout, and nbgrader gave up on
        # the notebook: nothing ran to the end, so everything scores zero (recorded, and said).
        notes.append(f"nbgrader could not finish it ({reason}): every test scores zero")
    if flags:
        status = Status.FLAGGED
    return Result(job.student, job.assignment, status, "; ".join(notes), list(dict.fromkeys(flags)), notebooks)


def _own(path: Path, uid: int | None) -> None:
    """Hand a scratch folder to the sandbox's uid (the only place it may write)."""
    if uid is None:
        return
    for folder, dirs, files in os.walk(path):
        os.chown(folder, uid, uid)
        for name in files:
            os.chown(os.path.join(folder, name), uid, uid)


def _prepare(job: Job, root: Path, submission: Path, scratch: Path, inputs: Path, uid: int | None):
    """The scratch course: returns (notes, review flags, guard token)."""
    notes, flags, token = [], [], guards.new_token()
    # Only the notebooks (and the platform's upload time) are graded. Any other file handed
    # in would land next to the notebook, first on the kernel's sys.path, where a package
    # named like a helper (utils/, hidden_tests/) would replace the checks.
    wanted = {f"{name}.ipynb" for name in job.notebooks} | {"timestamp.txt"}
    (inputs / "submitted").mkdir(parents=True)
    others = []
    for entry in sorted(submission.iterdir()):
        if entry.name in wanted and entry.is_file() and not entry.is_symlink():
            shutil.copyfile(entry, inputs / "submitted" / entry.name)
        elif entry.name not in wanted and not entry.name.startswith("."):  # .ipynb_checkpoints, markers
            others.append(entry.name + ("/" if entry.is_dir() else ""))
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        notes.append(f"only the notebook was graded; other files handed in were left out: {shown}")
    for name in job.notebooks:
        path = inputs / "submitted" / f"{name}.ipynb"
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        release = root / "release" / job.assignment / f"{name}.ipynb"
        provided = set()
        if release.exists():
            released = nbformat.read(release, as_version=4)
            provided = {c.source.strip() for c in released.cells if c.cell_type == "code"}
            restored, missing = repair.restore_metadata(nb, released)
            if restored:
                notes.append(f"{name}.ipynb had lost nbgrader's cell metadata (Colab or another editor): "
                             f"{len(restored)} cell(s) matched to the assignment by id, content or position")
            if missing:
                notes.append(f"{name}.ipynb lacks the cells {', '.join(missing)}: they score zero")
        copies = repair.deduplicate(nb)
        if copies:
            notes.append(f"{name}.ipynb has copies of the cells {', '.join(copies)}: only the first of each counts")
        flags += guards.static_scan(nb, provided)
        guards.inject(nb, token, str(scratch if job.unsafe else sandbox.INSIDE),
                      tuple(Path(name).stem for name in HELPERS))
        nbformat.write(nb, path)
    (inputs / "ipython").mkdir()
    data = inputs / "source"
    data.mkdir(parents=True)
    src = root / "source" / job.assignment
    ignore = shutil.ignore_patterns(*NOT_DATA)
    shutil.copytree(src, data, ignore=ignore, dirs_exist_ok=True, symlinks=False)
    config = (root / "nbgrader_config.py").read_text()
    # Extra credit is the parent's to compute (course/gradebook.py), from the real source/.
    config += ("\n# course/grading.py: the sandboxed run only executes; the parent scores.\n"
               "c.Autograde.autograde_preprocessors = [p for p in c.Autograde.autograde_preprocessors "
               "if p.__name__ != 'AwardBonusPoints']\n")
    (inputs / "nbgrader_config.py").write_text(config)
    for folder in (scratch, scratch / "autograded", scratch / "home"):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template(root, job.assignment), scratch / "gradebook.db")
    if not job.unsafe:  # mount points, so that bwrap does not create them root-only
        for inside, outside in _binds(job, root, inputs).items():
            target = scratch / inside
            if outside.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
    _own(scratch, uid)
    for path in scratch.rglob("*"):
        if path.is_dir():
            os.chmod(path, 0o755)
    for path in inputs.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return notes, flags, token


def _template(root: Path, assignment: str) -> Path:
    return root / "autograded" / f".gradebook-{assignment}.db"


def _binds(job: Job, root: Path, inputs: Path) -> dict[str, Path]:
    binds = {"course": root / "course", "course.toml": root / "course.toml",
             "nbgrader_config.py": inputs / "nbgrader_config.py",
             f"submitted/{job.student}/{job.assignment}": inputs / "submitted",
             f"source/{job.assignment}": inputs / "source",
             # IPython's folder, empty and read-only: a kernel started after a death would
             # otherwise run start-up files or config the submission wrote there before
             # the guard cells (IPython then uses a fresh temporary folder per kernel).
             "ipython": inputs / "ipython"}
    binds.update({name: root / name for name in HELPERS if (root / name).exists()})
    return binds


def _run(job: Job, root: Path, scratch: Path, inputs: Path, limits: sandbox.Limits, log_path: Path,
         uid: int | None):
    """Run nbgrader autograde for the job; (timed out, return code, log)."""
    inner = [sys.executable, "-m", "nbgrader", "autograde", job.assignment, f"--student={job.student}", "--force"]
    if job.unsafe:
        for inside, outside in _binds(job, root, inputs).items():
            (scratch / inside).parent.mkdir(parents=True, exist_ok=True)
            if not (scratch / inside).exists():
                (scratch / inside).symlink_to(outside)
        home, cmd = scratch, [*limits.prlimit(), *inner]
    else:
        home = sandbox.INSIDE
        cmd = None
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": f"{home}/home", "PYTHONPATH": str(home),
           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "LANG": "C.UTF-8", "JUPYTER_RUNTIME_DIR": f"{home}/home/runtime", "IPYTHONDIR": f"{home}/ipython",
           "COURSE_QUICK": "1"}  # shorter demonstration runs, which no test reads (utils/quick.py)
    if os.environ.get("COURSE_NO_PROGRESS"):
        env["COURSE_NO_PROGRESS"] = os.environ["COURSE_NO_PROGRESS"]
    if cmd is None:
        env[SANDBOXED] = "1"  # course/execute.py ends the submission's leftover processes
        cmd = sandbox.command(inner, scratch, _binds(job, root, inputs), limits, env, uid)
    _set_deadline(inputs / "nbgrader_config.py", limits.wall_s)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env if job.unsafe else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_s or None)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # bwrap's process namespace takes everything with it
            except ProcessLookupError:
                pass
            proc.wait()
    text = log_path.read_text(errors="replace")
    return timed_out, proc.returncode, text[-20000:]


DEADLINE_LINE = "c.ExecuteKeepingScores.deadline = "


def _set_deadline(config: Path, wall_s: int) -> None:
    """No cell starts or runs past the wall-clock limit less the time nbgrader needs to write its
    results (a fifth, at most a minute): a slow submission keeps the scores of what ran in time."""
    lines = [line for line in config.read_text().splitlines() if not line.startswith(DEADLINE_LINE)]
    if wall_s:
        lines.append(f"{DEADLINE_LINE}{time.time() + wall_s - min(60.0, wall_s / 5):.3f}")
    config.write_text("\n".join(lines) + "\n")


def _read_inside(base: Path, parts: list[str], limit: int) -> bytes | None:
    """Read base/parts... without following any link the sandbox may have planted; None if absent."""
    flags = os.O_RDONLY | os.O_NOFOLLOW
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        file_fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(file_fd, "rb") as handle:
            file_fd = -1
            return handle.read(limit + 1)[:limit]
    finally:
        if file_fd >= 0:
            os.close(file_fd)


def _read_notebooks(scratch: Path, job: Job) -> dict[str, str]:
    limit = max(job.limits.get("file_size_mb", 256), 1) * 1024 * 1024
    texts = {}
    for name in job.notebooks:
        data = _read_inside(scratch, ["autograded", job.student, job.assignment, f"{name}.ipynb"], limit)
        if data is not None:
            texts[name] = data.decode("utf-8", errors="replace")
    return texts


def _its_own_fault(log: str) -> bool:
    """nbgrader gave up because of what the submission's code did (not a failed start)."""
    return "DeadKernelError" in log or "CellTimeoutError" in log


MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc")


def _cell_name(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or str(cell.get("id", "?"))


def _limit_hit(nb, limits: sandbox.Limits) -> str | None:
    """The first sandbox limit the run hit, as a message naming the cell."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = " ".join([out.get("ename", ""), out.get("evalue", ""), out.get("text", "") if out.get("output_type") == "stream" else ""])
            if any(m in text for m in MEMORY_ERRORS):
                return f"memory limit {limits.memory_mb / 1024:g} GiB exceeded in cell '{_cell_name(cell)}'"
            if "File too large" in text:
                return f"file size limit {limits.file_size_mb} MiB exceeded in cell '{_cell_name(cell)}'"
            if "Resource temporarily unavailable" in text or "can't start new thread" in text:
                return f"process limit ({limits.pids}) reached in cell '{_cell_name(cell)}'"
    return None


def _with_error(nb, ename: str) -> list[str]:
    """The code cells with an error output of this name (course/execute.py writes them)."""
    return [_cell_name(c) for c in nb.cells if c.cell_type == "code"
            and any(o.get("ename") == ename for o in c.get("outputs", []) if o.get("output_type") == "error")]


def _first_with_error(nb, ename: str) -> str | None:
    return next(iter(_with_error(nb, ename)), None)


def _stopped_at(nb) -> str | None:
    """The cell after which nothing ran (the kernel died or exited), or None."""
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    ran = [i for i, c in enumerate(code) if c.get("execution_count") is not None]
    if not code or (ran and ran[-1] == len(code) - 1):
        return None
    return _cell_name(code[ran[-1] + 1]) if ran else _cell_name(code[0])


def _recorded(assignment: str, student: str) -> bool:
    from .scores import read

    return read(assignment, student) is not None


def register(assignment: str) -> None:
    """Make the gradebook know the assignment's current tests before anything is graded.

    nbgrader grades against the test cells it recorded when it last generated the
    assignment. Whenever source/ changed since then (or the gradebook is new), the
    assignment is generated again, into a scratch folder so release/ stays untouched.
    A second generation fills the template gradebook every sandboxed run starts from:
    it knows this assignment only, and no student.
    """
    stamp_file = AUTOGRADED / f".registered-{assignment}"
    stamp = _source_stamp(assignment)
    template = _template(ROOT, assignment)
    if GRADEBOOK.exists() and template.exists() and matches(stamp_file, stamp):
        return
    with tempfile.TemporaryDirectory(prefix="register-") as scratch:
        result = nbgrader_cli.run("generate_assignment", assignment, "--force",
                                  f"--CourseDirectory.release_directory={scratch}", check=False)
    if not result.ok:
        if "Cannot add or remove cells" in result.log:
            raise CourseError(
                f"the gradebook holds graded submissions of {assignment}, and source/{assignment} now has "
                "other graded or locked cells than when they were graded. nbgrader refuses to change an "
                "assignment under recorded grades. Restore the cells, or, to start over, export the grades "
                "(grades.csv) and move gradebook.db away."
            )
        raise CourseError(f"could not register {assignment} in the gradebook: {'; '.join(result.errors()[-3:])}")
    template.parent.mkdir(parents=True, exist_ok=True)
    partial = template.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="register-") as scratch:
        nbgrader_cli.run("generate_assignment", assignment, "--force", f"--CourseDirectory.release_directory={scratch}",
                         f"--CourseDirectory.db_url=sqlite:///{partial}")
    os.replace(partial, template)
    record(stamp_file, stamp)


def _source_stamp(assignment: str) -> str:
    return digest([SOURCE / assignment, ROOT / "nbgrader_config.py"])


def jobs(assignment: str, who: list[str], force: bool, unsafe: bool) -> tuple[list[Job], list[Outcome]]:
    """The submissions to grade, and the outcomes of those skipped as up to date."""
    cfg = settings().grading
    limits = {f: getattr(cfg, f) for f in sandbox.Limits.__dataclass_fields__}
    names = tuple(gradebook.notebook_names(assignment))
    todo, skipped = [], []
    for student in who:
        stamp = fingerprint(assignment, student)
        if not force and matches(AUTOGRADED / student / assignment / FINGERPRINT_FILE, stamp) \
                and _recorded(assignment, student):
            skipped.append(Outcome(student, assignment, Status.UP_TO_DATE))
            continue
        todo.append(Job(str(ROOT), assignment, student, stamp, unsafe, limits, cfg.max_notebook_mb, names))
    return todo, skipped


def accept(result_json: str, job: Job) -> Outcome:
    """Record one worker's result (the parent, the only writer); a malformed result is an error."""
    try:
        result = Result.from_json(result_json)
        if (result.student, result.assignment) != (job.student, job.assignment):
            raise ValueError("a result for another submission")
        notebooks = {}
        for name, text in result.notebooks.items():
            if name not in job.notebooks:
                raise ValueError(f"a result with an unknown notebook {name!r}")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
            notebooks[name] = nb
    except Exception as exc:
        return Outcome(job.student, job.assignment, Status.ERROR, f"the grading result was malformed: {exc}")
    if not result.status.recorded:
        return result.outcome()
    timestamp = _timestamp(SUBMITTED / job.student / job.assignment)
    folder = AUTOGRADED / job.student / job.assignment
    stamp_file = folder / FINGERPRINT_FILE
    if stamp_file.is_file() and not stamp_file.is_symlink():
        stamp_file.unlink()  # until the new scores are all written, this submission counts as not graded
    recorded = gradebook.record(job.assignment, job.student, notebooks, bool(result.flags), timestamp)
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, nb in recorded.items():
        _write_atomic(folder / f"{name}.ipynb", nbformat.writes(nb))
    record(folder / FINGERPRINT_FILE, result.fingerprint)
    return result.outcome()


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _timestamp(folder: Path):
    path = folder / "timestamp.txt"
    if path.is_file() and not path.is_symlink() and path.stat().st_size < 200:
        from nbgrader.utils import parse_utc

        try:
            return parse_utc(path.read_text().strip())
        except Exception:
            return None
    return None


def refuse_without_sandbox(unsafe: bool) -> None:
    if unsafe:
        return
    why = sandbox.problem()
    if why:
        raise CourseError(f"cannot sandbox student code here: {why}. Grading runs every submission in a "
                          "bubblewrap sandbox; install it (make venv prints how), or pass --unsafe to grade "
                          "without one (student code then runs with your rights).")


def grade(assignment: str, only: list[str] | None = None, force: bool = False, workers: int | None = None,
          scheduler: str | None = None, unsafe: bool = False, progress=None) -> list[Outcome]:
    """Autograde the submissions of ``assignment`` (all, or the students in ``only``)."""
    from . import parallel

    check_assignment(assignment)
    refuse_without_sandbox(unsafe)
    register(assignment)
    apply_due_date(assignment)
    available = students(assignment)
    missing = sorted(set(only or []) - set(available))
    if missing:
        raise CourseError(f"no submission of {assignment} in submitted/ for: {', '.join(missing)}")
    todo, outcomes = jobs(assignment, only or available, force, unsafe)
    if progress:
        for outcome in outcomes:
            progress(outcome)
    outcomes += parallel.grade_all(todo, workers, scheduler, accept, progress)
    graded = [o.student for o in outcomes if o.ok]
    stale = sorted({s for s in graded if not (FEEDBACK / s / assignment).is_dir()}
                   | {o.student for o in outcomes if o.ok and o.status is not Status.UP_TO_DATE})
    write_feedback(assignment, stale)
    return outcomes


def write_feedback(assignment: str, who: list[str]) -> list[str]:
    """Build the feedback pages of these students from the gradebook (scores, the graders'
    points and comments on written answers); returns the students who got pages.

    Grading writes them for what it graded; after teaching assistants have graded written
    answers in the formgrader, ``course feedback`` writes them again."""
    who = [s for s in who if (AUTOGRADED / s / assignment).is_dir() and _recorded(assignment, s)]
    if who:
        pattern = who[0] if len(who) == 1 else "*"
        nbgrader_cli.generate_feedback(assignment, pattern)
        _keep_only_pages(assignment)
    return who


def _keep_only_pages(assignment: str) -> None:
    """nbgrader copies every other file of the autograded folder into feedback/ (data,
    whatever the student's code wrote, our stamps): students get the HTML pages only."""
    for folder in FEEDBACK.glob(f"*/{assignment}"):
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file() and path.suffix != ".html":
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def export_csv(path: Path = GRADES_CSV) -> Path:
    """grades.csv: autograded, bonus, written (graded or pending) and late points apart (course/export.py)."""
    from .export import write_grades  # export reads scores, which imports this module

    return write_grades(path)
