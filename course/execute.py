"""Autograding's execution step, except that a dying kernel keeps the scores before it.

nbgrader's ``Execute`` gives up on the whole notebook when the kernel dies (a segfault, the
memory limit's kill, ``os._exit``): the autograded notebook is never written and every
test scores zero, the ones that passed before the crash included. ``ExecuteKeepingScores``
(set in nbgrader_config.py) instead

* gives the cell the kernel died in an error output, ``DeadKernelError``, that says so (a
  test cell that dies scores zero, as any failing test cell);
* does the same for a cell that runs past its timeout and ignores the interrupt (nbclient
  would give up on the notebook there too);
* starts a fresh kernel, runs the cells marked ``metadata.course.rerun_after_restart``
  again (the grader's own set-up, course/guards.py), and goes on with the next cell. Later
  cells that needed what the dead kernel held fail on their own (a ``NameError``), and
  later exercises that do not earn their points;
* after ``max_restarts`` deaths leaves the remaining cells unexecuted, so a submission
  that kills every kernel cannot multiply the grading time (they score zero, and
  course/grading.py reports where the run stopped).

The same holds for time: with a ``deadline`` (set by course/grading.py from the
submission's wall-clock limit, leaving nbgrader time to write its results), no cell runs
past it; the cell it interrupts and the cells after it score zero, the ones before keep
their scores. Without it, the sandbox's hard kill at the wall-clock limit would leave no
graded notebook at all.

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
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Float, Integer

from .guards import GUARD_ID

SANDBOXED = "COURSE_SANDBOXED"  # set by course/grading.py in the sandbox's environment only
DIED = "DeadKernelError"
STUCK = "CellTimeoutError"  # ran past the timeout and ignored the interrupt
OUT_OF_TIME = "GradingTimeLimit"


def end_leftover_processes() -> None:
    """Inside the sandbox, kill every process the submission left behind, before nbgrader
    writes the graded notebook: a detached process could otherwise rewrite that file (the
    scores are read from its outputs) between the kernel's shutdown and the sandbox's end.

    ``kill(-1)`` reaches every process of this uid in the sandbox's PID namespace except
    its init (bwrap, pid 1) and this one. Outside a sandbox it would reach every process of
    the user, so it runs only where course/grading.py says it is sandboxed and pid 1 is bwrap.
    """
    if os.environ.get(SANDBOXED) != "1" or os.getpid() == 1:
        return
    try:
        with open("/proc/1/cmdline", "rb") as handle:
            init = handle.read().split(b"\0")[0]
    except OSError:
        return
    if os.path.basename(init) == b"bwrap":
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:  # nothing was left behind
            pass


def rerun_after_restart(cell) -> bool:
    """The grader's own set-up cells (course/guards.py, which strips the mark from a
    submission's cells and renames a submitted cell whose id poses as a guard's)."""
    return (str(cell.get("id", "")).startswith(GUARD_ID)
            and bool(cell.get("metadata", {}).get("course", {}).get("rerun_after_restart")))


class ExecuteKeepingScores(Execute):
    max_restarts = Integer(
        3, help="How often a notebook's kernel may die and be replaced by a fresh one before the "
                "remaining cells are left unexecuted (each restart costs a kernel start).",
    ).tag(config=True)

    deadline = Float(
        0.0, help="Unix time after which no cell runs (0: none); a cell still running then is "
                  "interrupted. course/grading.py sets it from the wall-clock limit of the submission.",
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._restarts, self._gave_up = 0, False
        try:
            return super().preprocess(nb, resources, km)
        finally:
            end_leftover_processes()

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if not self.deadline:
            return timeout
        left = max(1, math.ceil(self.deadline - time.time()))  # ends at or after it
        return left if timeout is None else min(timeout, left)

    def preprocess_cell(self, cell, resources, index):
        if self.deadline and time.time() >= self.deadline and cell.cell_type == "code":
            self._gave_up = True  # every code cell from here on says why it did not run
            cell.outputs = [new_output("error", ename=OUT_OF_TIME, evalue="the time for grading this submission "
                                       "ran out before this cell: it and the cells after it did not run",
                                       traceback=[f"{OUT_OF_TIME}: grading time ran out before this cell"])]
            return cell, self.resources
        if self._gave_up:
            return cell, self.resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            return self._replace_kernel(cell, DIED, "the kernel died while running this cell",
                                        "Kernel died while running this cell (a crash, the memory limit or an exit)")
        except CellTimeoutError:
            # The cell ran past its timeout and its kernel did not stop when interrupted (a
            # loop that catches KeyboardInterrupt, a long native call): nbclient gives up on
            # the whole notebook here, which would cost the scores of every cell before.
            return self._replace_kernel(cell, STUCK, "the cell ran out of time and ignored the interrupt",
                                        "This cell ran past the time limit and did not stop when interrupted; "
                                        "its kernel was replaced")

    def _replace_kernel(self, cell, ename: str, short: str, why: str):
        """Fail ``cell`` with ``why`` and carry on in a fresh kernel, within ``max_restarts``."""
        cell.outputs.append(new_output("error", ename=ename, evalue=f"{why}; the cells after it ran in a fresh kernel",
                                       traceback=[f"{ename}: {short}"]))
        if self.deadline and time.time() >= self.deadline:
            return cell, self.resources  # the next cell reports that the time ran out
        if self._restarts >= self.max_restarts:
            self._gave_up = True
            cell.outputs[-1]["evalue"] = (f"{why}, after {self._restarts} restart{'s' * (self._restarts != 1)}: "
                                          "the cells after it did not run")
            return cell, self.resources
        self._restarts += 1
        try:
            self._fresh_kernel()
        except Exception as exc:  # no fresh kernel, or its set-up failed: stop here, keep what ran
            self._gave_up = True
            cell.outputs[-1]["evalue"] = (f"{why}; a fresh kernel could not be started ({type(exc).__name__}): "
                                          "the cells after it did not run")
        return cell, self.resources

    def _fresh_kernel(self) -> None:
        run_sync(self._async_fresh_kernel)()

    async def _async_fresh_kernel(self) -> None:
        if self.kc is not None:
            await ensure_async(self.kc.stop_channels())
        await ensure_async(self.km.restart_kernel(now=True))
        await self.async_start_new_kernel_client()
        for index, cell in enumerate(self.nb.cells):
            if rerun_after_restart(cell):  # the grader's set-up (its outputs are not graded)
                await self.async_execute_cell(copy.deepcopy(cell), index, store_history=False)
