"""Inside the sandbox: run a submission's prepared notebooks and hand the results back.

    python -m course.engine.run_notebook < spec.json

The worker (course/engine/worker.py) starts this as the sandbox's only command. It reads
the whole spec from stdin: the prepared notebooks (JSON text), the folder the kernels run in,
the cell timeout, the deadline and the number of kernel restarts allowed. It runs each
notebook in a fresh kernel with ``Executor`` (course/engine/execute.py) and writes ``running`` and
then one JSON object to its original stdout: ``{"notebooks": {name: executed notebook}, "error": ""}``.

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

import ctypes
import json
import os
import sys
import traceback

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


def run(spec: dict) -> dict:
    import nbformat

    from .execute import Executor, end_leftover_processes

    executed = {}
    try:
        for name, text in spec["notebooks"].items():
            nb = nbformat.reads(text, as_version=4)
            client = Executor(nb, timeout=spec["timeout"], startup_timeout=spec["startup_timeout"],
                              kernel_name=spec.get("kernel_name", "python3"), deadline=spec["deadline"],
                              max_restarts=spec["max_restarts"],
                              resources={"metadata": {"path": spec["cwd"]}})
            try:
                client.execute()
            except Exception as exc:  # the kernel never started, or nbclient gave up: keep what ran
                nb.metadata["course_execution_error"] = f"{type(exc).__name__}: {exc}"[:2000]
            executed[name] = nbformat.writes(nb)
    finally:
        end_leftover_processes()
    return {"notebooks": executed, "error": ""}


RUNNING = "running"  # the first line, once the spec is read (course/engine/worker.py)


def main() -> int:
    spec = json.loads(sys.stdin.read())
    out = _private_stdout()
    out.write(RUNNING + "\n")
    out.flush()
    try:
        result = run(spec)
    except BaseException:  # a failure of the runner itself: say so, the worker reports it
        result = {"notebooks": {}, "error": traceback.format_exc()[-3000:]}
    out.write(json.dumps(result))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
