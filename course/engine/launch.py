"""The sandboxed run, started before the submission is read, then handed its notebooks.

Before the first cell can run, the run (course/engine/run_notebook.py) needs a Python start,
its imports and a kernel start, about 0.9 s that depend on nothing the student wrote. So
the worker (course/engine/worker.py) launches it first with the *head* of the spec: the
folder the kernel runs in, the timeouts, the deadline. While the runner imports and its
kernel starts, the worker checks and prepares the submission; then ``finish`` sends the
*body*, the prepared notebooks, and waits for the answer. A submission that cannot be
graded stops the runner (``stop``) before it was given any code.

On the runner's stdin: the head as one line of JSON, then the body as JSON up to the end.
On its stdout: ``running`` once it holds the head, then the answer as one JSON object.
No cell runs before the whole body has been read, so nothing the student wrote is running
while the runner still reads its stdin (the kernel has a pipe of its own anyway).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

RUNNING = "running"  # the runner's first line, once it holds the head
# How the runner starts each kernel (course/engine/execute.py's Executor starts the same):
# no history file, so nothing of one cell's input is written to disk.
KERNEL_NAME = "python3"
KERNEL_ARGUMENTS = ("--HistoryManager.hist_file=:memory:",)
POLITE_S = 10  # seconds a runner outside the sandbox gets to stop its kernel and exit


class Run:
    """What came back from the sandbox: the executed notebooks, or why there are none."""

    def __init__(self, notebooks=None, error: str = "", started: bool = True, timed_out: bool = False):
        self.notebooks: dict[str, str] = notebooks or {}
        self.error, self.started, self.timed_out = error, started, timed_out


class Launched:
    """A runner started with its head; ``finish`` hands it the notebooks, ``stop`` ends it.

    Use it as a context manager: leaving the block kills the runner's process group (bwrap's
    process namespace takes everything it started with it) whatever happened. Without a
    sandbox (``polite``, for ``--unsafe``) the kernel has a session of its own, so the runner
    is first asked to stop it when it was given no notebooks: its input ends, and it stops
    its kernel and exits."""

    def __init__(self, cmd: list[str], env: dict, cwd: Path | None, head: dict, polite: bool = False):
        self.polite, self.sent = polite, False
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        try:
            self.proc.stdin.write((json.dumps(head) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:  # it is gone already: finish() reports what it said
            pass

    def __enter__(self) -> Launched:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        if self.polite and not self.sent and self.proc.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=POLITE_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()

    def finish(self, notebooks: dict[str, str], wall_s: int | None) -> Run:
        """Send the notebooks, read the answer; kill the run at ``wall_s`` seconds."""
        self.sent = True
        try:
            out, err = self.proc.communicate(json.dumps(notebooks).encode(), timeout=wall_s or None)
        except subprocess.TimeoutExpired:
            return Run(timed_out=True)
        finally:
            self.stop()
        started, _, answer = out.decode("utf-8", errors="replace").partition("\n")
        said = (err.decode(errors="replace").strip() or f"exit status {self.proc.returncode}")[-500:]
        if started != RUNNING:
            return Run(error=f"the sandbox could not start the run ({said})", started=False)
        try:
            answer = json.loads(answer)
            executed = answer["notebooks"]
            if not isinstance(executed, dict) or not all(isinstance(v, str) for v in executed.values()):
                raise ValueError("notebooks must map names to JSON text")
        except (ValueError, KeyError, TypeError):
            return Run(error="")  # started, and stopped before it answered
        return Run(executed, str(answer.get("error") or "")[-1000:] or "")
