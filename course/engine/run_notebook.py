"""Inside the sandbox: run a submission's prepared notebooks and hand the results back.

    python -m course.engine.run_notebook < head and body

The worker (course/engine/worker.py) starts this as the sandbox's only command, before it
has prepared the submission (course/engine/launch.py). The head, one line of JSON on stdin,
holds the folder the kernels run in, the cell timeout, the deadline and the number of kernel
restarts allowed: with it, this process writes ``running``, imports, and starts the first
kernel. Then it reads the body, the prepared notebooks (name -> JSON text), runs each in a
fresh kernel with ``Executor`` (course/engine/execute.py), and writes one JSON object to its
original stdout: ``{"notebooks": {name: executed notebook}, "error": ""}``.

Threat: the kernels run the student's code as the same uid as this process. So the results
never pass through a file the kernel could write: they go to a pipe the kernels do not
inherit (stdout is moved to a private descriptor first, and the kernels get /dev/null), and
this process makes itself non-dumpable, so the kernel cannot open that pipe again through
``/proc/<pid>/fd`` or attach a debugger. What it can do is kill this process: then no result
comes back, and the worker reports the submission for review. Before writing, every process
the submission left behind is killed (``end_leftover_processes``).

Nothing of nbgrader is imported here: the sandbox's fixed cost is a Python start and nbclient.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
import traceback

from .launch import KERNEL_ARGUMENTS, KERNEL_NAME, RUNNING

PR_SET_DUMPABLE = 4


def _private_stdout():
    """The pipe to the worker on a descriptor no child inherits; fds 1 and 2 become /dev/null."""
    result = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")  # dup: not inheritable
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the sandbox does not run there anyway
        pass
    return result


def start_kernel(cwd: str):
    """The first kernel's manager, its kernel started before nbformat and nbclient load (a
    tenth of a second it need not wait for); None if it cannot start (nbclient then tries
    again, and says why)."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name=KERNEL_NAME)
    try:
        run_sync(km.start_kernel)(cwd=cwd, extra_arguments=list(KERNEL_ARGUMENTS))
    except Exception:
        return None
    return km


def run(head: dict, stdin) -> dict:
    """Start the first kernel, then read the notebooks from ``stdin`` and run each in a fresh
    kernel, the first one in the kernel started meanwhile."""
    km = start_kernel(head["cwd"])
    import nbformat
    from jupyter_core.utils import run_sync

    from .execute import Executor, end_leftover_processes

    executed = {}
    try:
        for name, text in json.loads(stdin.read()).items():
            nb = nbformat.reads(text, as_version=4)
            client = Executor(nb, km=km, timeout=head["timeout"], startup_timeout=head["startup_timeout"],
                              deadline=head["deadline"], max_restarts=head["max_restarts"],
                              resources={"metadata": {"path": head["cwd"]}})
            try:
                client.execute()
            except Exception as exc:  # the kernel never started, or nbclient gave up: keep what ran
                nb.metadata["course_execution_error"] = f"{type(exc).__name__}: {exc}"[:2000]
            executed[name] = json.dumps(nb)  # compact: the worker validates it (nbformat.writes costs 4x)
            # In the sandbox this kills the kernel too, at once; elsewhere the kernel started
            # ahead is stopped here (nbclient stops only those it started itself).
            if not end_leftover_processes() and km is not None:
                with contextlib.suppress(Exception):
                    run_sync(km.shutdown_kernel)(now=True)
            km = None
    finally:
        if km is not None:  # no notebook came
            with contextlib.suppress(Exception):
                run_sync(km.shutdown_kernel)(now=True)
        end_leftover_processes()
    return {"notebooks": executed, "error": ""}


def main() -> int:
    head = json.loads(sys.stdin.readline())
    out = _private_stdout()
    out.write(RUNNING + "\n")
    out.flush()
    try:
        result = run(head, sys.stdin)
    except BaseException:  # a failure of the runner itself: say so, the worker reports it
        result = {"notebooks": {}, "error": traceback.format_exc()[-3000:]}
    out.write(json.dumps(result))
    out.flush()
    os._exit(0)  # nothing left to do: skip tearing down the imported modules


if __name__ == "__main__":
    sys.exit(main())
