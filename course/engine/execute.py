"""Executing a submission's notebook so that a dying kernel keeps the scores before it.

nbgrader's ``Execute`` (and nbclient under it) gives up on the whole notebook when the kernel
dies (a segfault, the memory limit's kill, ``os._exit``): nothing is written and every test
scores zero, the ones that passed before the crash included. ``KeepScores`` instead

* gives the cell the kernel died in an error output, ``DeadKernelError``, that says so (a
  test cell that dies scores zero, as any failing test cell);
* does the same for a cell that runs past its timeout and ignores the interrupt (nbclient
  would give up on the notebook there too);
* starts a fresh kernel, runs the cells marked ``metadata.course.rerun_after_restart``
  again (the grader's own set-up, course/engine/guards.py), and goes on with the next cell.
  Later cells that needed what the dead kernel held fail on their own (a ``NameError``), and
  later exercises that do not need it earn their points;
* after ``max_restarts`` deaths leaves the remaining cells unexecuted, so a submission that
  kills every kernel cannot multiply the grading time.

The same holds for time: with a ``deadline`` (the submission's wall-clock limit less the time
needed to hand the results back), no cell runs past it; the cell it interrupts and the cells
after it score zero, the ones before keep their scores.

``KeepScores`` is an nbclient ``NotebookClient``: ``Executor`` below is the lean one the
grader runs inside the sandbox (course/engine/run_notebook.py; it imports nothing of
nbgrader, so it starts fast), and ``ExecuteKeepingScores`` puts the same behaviour into
nbgrader's own ``Execute`` for anyone who runs ``nbgrader autograde`` directly
(nbgrader_config.py); it is built on first use, so the sandbox never loads nbgrader.

Threat: a submission could kill its kernel on purpose to shed state, for instance the
references the guard cells captured; that is why the set-up cells run again in the fresh
kernel before any student cell, and the static scan flags ``os._exit`` and friends.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import time

from jupyter_client.utils import run_sync
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from traitlets import Bool, Dict, Enum, Float, Integer, List

from .. import cells
from ..cells import DIED, OUT_OF_TIME, STUCK
from .guards import GUARD_ID
from .launch import KERNEL_ARGUMENTS
from .sandbox import SANDBOXED


def end_leftover_processes() -> bool:
    """Inside the sandbox, kill every process the submission left behind before the results
    are handed back: a detached process must not outlive its notebook's run. True if it did.

    ``kill(-1)`` reaches every process of this uid in the sandbox's PID namespace except
    its init (bwrap, pid 1) and this one. Outside a sandbox it would reach every process of
    the user, so it runs only where the worker says it is sandboxed and pid 1 is bwrap.
    """
    if os.environ.get(SANDBOXED) != "1" or os.getpid() == 1:
        return False
    try:
        with open("/proc/1/cmdline", "rb") as handle:
            init = handle.read().split(b"\0")[0]
    except OSError:
        return False
    if os.path.basename(init) != b"bwrap":
        return False
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:  # nothing was left behind
        pass
    return True


def rerun_after_restart(cell) -> bool:
    """The grader's own set-up cells (course/engine/guards.py, which strips the mark from a
    submission's cells and renames a submitted cell whose id poses as a guard's)."""
    return (str(cell.get("id", "")).startswith(GUARD_ID)
            and bool(cells.course_meta(cell).get("rerun_after_restart")))


class KeepScores(NotebookClient):
    """An nbclient ``NotebookClient`` on which a dying or stuck kernel costs one cell (a base
    for nbgrader's ``Execute`` too, course/plugins/execute.py)."""

    max_restarts = Integer(
        3, help="How often a notebook's kernel may die and be replaced by a fresh one before the "
                "remaining cells are left unexecuted (each restart costs a kernel start).",
    ).tag(config=True)

    deadline = Float(
        0.0, help="Unix time after which no cell runs (0: none); a cell still running then is "
                  "interrupted. The grader sets it from the wall-clock limit of the submission.",
    ).tag(config=True)

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._restarts, self._gave_up = 0, False

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if not self.deadline:
            return timeout
        left = max(1, math.ceil(self.deadline - time.time()))  # ends at or after it
        return left if timeout is None else min(timeout, left)

    def on_cell_executed(self, **kwargs) -> None:
        """nbgrader's rule: an error reply without an error output (a timeout) gets one."""
        cell, reply = kwargs["cell"], kwargs["execute_reply"]
        content = reply["content"] if reply else {}
        if content.get("status") != "error":
            return
        if any(o.output_type == "error" and o.ename == content.get("ename") for o in cell.outputs):
            return
        cell.outputs.append(new_output("error", ename=content.get("ename", ""), evalue=content.get("evalue", ""),
                                       traceback=content.get("traceback") or
                                       ["ERROR: An error occurred while showtraceback was disabled"]))

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if self.deadline and time.time() >= self.deadline and cell.cell_type == "code":
            self._gave_up = True  # the cells after this one are left unrun (and say so in the report)
            cell.outputs = [new_output("error", ename=OUT_OF_TIME, evalue="the time for grading this submission "
                                       "ran out before this cell: it and the cells after it did not run",
                                       traceback=[f"{OUT_OF_TIME}: grading time ran out before this cell"])]
            return cell
        if self._gave_up:
            return cell
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            return await self._replace_kernel(cell, DIED, "the kernel died while running this cell",
                                              "Kernel died while running this cell (a crash, the memory limit "
                                              "or an exit)")
        except CellTimeoutError:
            # The cell ran past its timeout and its kernel did not stop when interrupted (a
            # loop that catches KeyboardInterrupt, a long native call): nbclient gives up on
            # the whole notebook here, which would cost the scores of every cell before.
            return await self._replace_kernel(cell, STUCK, "the cell ran out of time and ignored the interrupt",
                                              "This cell ran past the time limit and did not stop when "
                                              "interrupted; its kernel was replaced")

    # nbclient binds its synchronous ``execute_cell`` (which nbconvert's ExecutePreprocessor
    # calls) to its own coroutine: bind it to this one.
    execute_cell = run_sync(async_execute_cell)

    async def _replace_kernel(self, cell, ename: str, short: str, why: str):
        """Fail ``cell`` with ``why`` and carry on in a fresh kernel, within ``max_restarts``."""
        cell.outputs.append(new_output("error", ename=ename, evalue=f"{why}; the cells after it ran in a fresh kernel",
                                       traceback=[f"{ename}: {short}"]))
        if self.deadline and time.time() >= self.deadline:
            return cell  # the next cell reports that the time ran out
        if self._restarts >= self.max_restarts:
            self._gave_up = True
            cell.outputs[-1]["evalue"] = (f"{why}, after {self._restarts} restart{'s' * (self._restarts != 1)}: "
                                          "the cells after it did not run")
            return cell
        self._restarts += 1
        try:
            await self._fresh_kernel()
        except Exception as exc:  # no fresh kernel, or its set-up failed: stop here, keep what ran
            self._gave_up = True
            cell.outputs[-1]["evalue"] = (f"{why}; a fresh kernel could not be started ({type(exc).__name__}): "
                                          "the cells after it did not run")
        return cell

    async def _fresh_kernel(self) -> None:
        if self.kc is not None:
            await ensure_async(self.kc.stop_channels())
        await ensure_async(self.km.restart_kernel(now=True))
        await self.async_start_new_kernel_client()
        for index, cell in enumerate(self.nb.cells):
            if rerun_after_restart(cell):  # the grader's set-up (its outputs are not graded)
                await NotebookClient.async_execute_cell(self, copy.deepcopy(cell), index, store_history=False)


class Executor(KeepScores):
    """The grader's executor: nbgrader's execution settings on a plain ``NotebookClient``.

    Errors never stop the notebook (each test cell scores on its own); a cell past its
    timeout is interrupted and fails with ``CellTimeoutError``; the kernel keeps no history
    file, and is killed once the last cell has run (a graceful shutdown runs nothing anyone
    reads, and with torch loaded it took 1.4 to 2.4 s). ``max_output_bytes`` caps what one
    notebook's outputs may hold in this process: past it, outputs are dropped and the cell
    says so (a flood cannot exhaust the grader).
    """

    allow_errors = Bool(True)
    interrupt_on_timeout = Bool(True)
    raise_on_iopub_timeout = Bool(True)
    error_on_timeout = Dict({"ename": STUCK, "evalue": "",
                             "traceback": [f"{STUCK}: No reply from kernel before timeout"]})
    extra_arguments = List(list(KERNEL_ARGUMENTS))
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate")
    max_output_bytes = Integer(64 * 2**20, help="bytes of output one notebook may produce").tag(config=True)
    max_output_messages = Integer(50_000, help="output messages one notebook may produce").tag(config=True)

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._output_bytes, self._output_messages, self._over = 0, 0, set()

    def output(self, outs, msg, display_id, cell_index):
        self._output_bytes += len(str(msg.get("content", "")))
        self._output_messages += 1
        if self._output_bytes > self.max_output_bytes or self._output_messages > self.max_output_messages:
            if cell_index not in self._over:
                self._over.add(cell_index)
                outs.append(NotebookNode(new_output("stream", name="stdout",
                                                    text="\n[output limit reached: further output dropped]\n")))
            return None
        return super().output(outs, msg, display_id, cell_index)


def _execute_keeping_scores():
    """nbgrader's ``Execute`` with ``KeepScores`` (note that nbgrader's own autograding runs
    student code with the rights of whoever starts it: ``course grade`` does not)."""
    from nbgrader.preprocessors import Execute

    class ExecuteKeepingScores(KeepScores, Execute):
        def preprocess(self, nb, resources=None, km=None):
            try:
                return super().preprocess(nb, resources, km)
            finally:
                end_leftover_processes()

    ExecuteKeepingScores.__module__, ExecuteKeepingScores.__qualname__ = __name__, "ExecuteKeepingScores"
    return ExecuteKeepingScores


def __getattr__(name: str):
    if name == "ExecuteKeepingScores":  # only nbgrader_config.py asks, in a process with nbgrader
        globals()[name] = _execute_keeping_scores()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
