"""The command line that runs one submission's grading inside a bubblewrap sandbox.

Threat: ``nbgrader autograde`` executes student code with the privileges of whoever
runs it. Inside the sandbox built here that code

* sees a read-only system (``/usr``, a few files of ``/etc``), a read-only Python
  environment, and one private folder, ``/course``, holding a scratch copy of its own
  submission, the assignment's data files and the helper code (course/config.py
  HELPERS), all read-only, plus a scratch gradebook and output folder it may write;
* cannot see the real gradebook, ``source/``, ``samples/``, other students'
  submissions, autograded copies or feedback, the instructor's home, or the grader's
  environment variables (the environment is cleared);
* has no network (a new, empty network namespace: not even loopback reaches out);
* runs as an unprivileged user of its own, under resource limits (address space,
  processes, CPU seconds, open files, file size). When the grader runs as root, each
  running sandbox leases a uid no account and no other sandbox on the machine uses
  (``sandbox_uid``): the kernel counts the process limit per uid, so a fork bomb in one
  submission must not stop the submissions graded next to it from starting a thread.
  Without root, bubblewrap's user namespace gives each sandbox its own count;
* dies with the grading step: the sandbox has its own process namespace, so when the
  graded run ends or is killed, every process it started is killed too. Leftovers are
  killed earlier as well, once the notebook has run and before nbgrader writes the graded
  notebook (course/execute.py), so that no process of the submission can rewrite it.

What it does not hide: the kernel runs the test cells, hidden tests included, so a
submission can read the test code of its own assignment and the ``hidden_tests``
helpers (feedback withholds those lines, course/feedback.py).

Where bubblewrap cannot run (not installed, no user namespaces, macOS), ``problem()``
says why; the caller refuses to grade unless the instructor asked for ``--unsafe``.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import Limits

# uids the sandboxes of one machine lease (root only): far above any account, as long as
# the system (or the container's user namespace) maps them; see uid_block().
FIRST_UID = 2_100_000_000
UID_BLOCK = 1024  # sandboxes running at once on one machine, at most
NOBODY = 65534
# One lock file per leased uid, in root's own /run: /run/lock is world-writable, where
# another user could create the folder first and hold or redirect the leases.
UID_LOCKS = Path("/run/course-sandbox")
INSIDE = Path("/course")  # where the scratch course appears inside the sandbox
SANDBOXED = "COURSE_SANDBOXED"  # set in the sandbox's environment only (course/engine/execute.py reads it)
# Files of /etc that Python, nbgrader and matplotlib read; the rest of /etc stays out.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime",
       "ssl", "ca-certificates", "fonts", "alternatives", "mime.types", "hosts")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32")


def prlimit(limits: Limits) -> list[str]:
    """The ``prlimit`` prefix that applies these limits to a command (0 = no limit)."""
    mb = 1024 * 1024
    caps = {"--as": limits.memory_mb * mb, "--nproc": limits.pids, "--cpu": limits.cpu_s,
            "--nofile": limits.open_files, "--fsize": limits.file_size_mb * mb}
    return ["prlimit", *(f"{k}={v}" for k, v in caps.items() if v), "--core=0", "--"]


def python_dirs() -> list[Path]:
    """Folders the Python environment lives in (the interpreter's prefix and the venv)."""
    dirs = {Path(sys.base_prefix), Path(sys.prefix)}
    dirs |= {d.resolve() for d in dirs}
    return sorted(dirs)


def _parents(path: Path, made: set[Path]) -> list[str]:
    """Create every missing ancestor of ``path`` world-readable (bwrap would make them 0700)."""
    args = []
    for parent in reversed(path.parents):
        if str(parent) != "/" and parent not in made and str(parent) not in SYSTEM_DIRS:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def uid_block(uid_map: str | None = None) -> range:
    """The uids sandboxes lease: FIRST_UID onwards, or, where a container's user namespace
    maps fewer uids, the block just below ``nobody`` (accounts in it are skipped)."""
    if uid_map is None:
        try:
            uid_map = Path("/proc/self/uid_map").read_text()
        except OSError:
            uid_map = f"0 0 {2**32 - 1}"
    mapped = [(int(inside), int(inside) + int(count)) for inside, _, count in
              (line.split() for line in uid_map.splitlines() if line.strip())]
    wanted = range(FIRST_UID, FIRST_UID + UID_BLOCK)
    if any(start <= wanted.start and wanted.stop <= stop for start, stop in mapped):
        return wanted
    top = min(max(stop for _, stop in mapped), NOBODY)
    return range(max(top - UID_BLOCK, 1000), top)


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


@contextmanager
def sandbox_uid(locks: Path = UID_LOCKS) -> Iterator[int | None]:
    """A uid for one sandbox, held until the block ends; None when the grader is not root
    (bubblewrap then maps the caller's own uid into a user namespace of its own).

    The lease is an exclusive ``flock`` on ``locks/<uid>``: the kernel drops it when the
    holder exits or is killed, so a crashed grader never keeps a uid.
    """
    if os.geteuid() != 0:
        yield None
        return
    locks.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(locks)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{locks} must be a folder owned by root that no one else may write to: "
                           "remove it, and grading creates it again")
    for uid in uid_block():
        if _has_account(uid):
            continue
        fd = os.open(locks / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {UID_BLOCK} sandbox uids are in use on this machine: grade with fewer workers")


def command(inner: list[str], scratch: Path, readonly: dict[str, Path], limits: Limits,
            env: dict[str, str], uid: int | None = None) -> list[str]:
    """bwrap + limits around ``inner``, run as ``uid`` (from ``sandbox_uid``; root only).

    ``scratch`` (a host folder owned by ``uid``) appears as /course, writable;
    ``readonly`` maps paths inside /course to host files or folders mounted read-only
    over it. ``env`` is the whole environment the command gets.
    """
    args = ["bwrap"]
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC:
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    # /tmp: private, writable by the sandbox user, in memory and capped at the file size limit.
    # Mounted before the environment, which may itself live under /tmp (a CI clone's venv).
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777",
             *(["--size", str(limits.file_size_mb * 1024 * 1024)] if limits.file_size_mb else []), "--tmpfs", "/tmp"]
    made: set[Path] = set()
    for folder in python_dirs():
        args += [*_parents(folder, made), "--ro-bind", str(folder), str(folder)]
        made.add(folder)
    args += ["--bind", str(scratch), str(INSIDE)]
    for inside, outside in sorted(readonly.items()):
        args += ["--ro-bind", str(outside), str(INSIDE / inside)]
    args += ["--chdir", str(INSIDE), "--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        # Root's process count is never limited and root reads any file it can see: drop to
        # the leased uid inside (bwrap sets no_new_privs, so setuid programs cannot climb back).
        if uid is None:
            raise ValueError("a sandbox started by root needs a uid from sandbox_uid()")
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                 "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
    else:
        args += ["--unshare-user", "--"]
    return [*args, *prlimit(limits), *inner]


def problem() -> str | None:
    """Why the sandbox cannot run here, or None when it can."""
    missing = [tool for tool in ("bwrap", "prlimit", "setpriv") if not shutil.which(tool)]
    if missing:
        return (f"{', '.join(missing)} not found: install bubblewrap and util-linux "
                "(Debian/Ubuntu: apt-get install bubblewrap util-linux)")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sandbox-check-") as scratch, sandbox_uid() as uid:
        if uid is not None:
            os.chown(scratch, uid, uid)
        probe = command([sys.executable, "-I", "-S", "-c", "pass"], Path(scratch), {}, Limits(), {"PATH": "/usr/bin:/bin"},
                        uid)
        try:
            proc = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap could not start: {exc}"
    if proc.returncode != 0:
        return f"bubblewrap could not start a sandbox here (no user namespaces?): {proc.stderr.strip()[-300:]}"
    return None
