"""Quick demonstration runs: one course-wide switch that shortens what a notebook only shows.

Some notebooks train and draw for minutes between their exercises so that students can look
at the results (the landscape notebook's runs of every optimizer on a CNN, each with its
loss landscape). No test cell scores those runs, but grading, the mutation suite and the
hand-in check would pay for them on every submission. A demonstration cell therefore asks
for its sizes through ``demo_size``::

    n_epochs = demo_size(5, quick=1)       # 5 epochs, or 1 when quick runs are on

Quick runs are on when ``COURSE_QUICK`` is set (to anything but "0"), and whenever nbgrader
itself executes the notebook (it sets ``NBGRADER_EXECUTION`` when it autogrades and when a
student presses *Validate*: both only read the test cells). Who sets ``COURSE_QUICK``: the
grader, for the kernel that runs a submission (``course/engine/worker.py``); the mutation suite
(``course/commands/mutations.py``); the hand-in check (``utils/handin.py``). A student's own run of
the notebook is never shortened.

The rule that keeps this honest: ``demo_size`` appears only in cells whose results no graded
cell reads, so graded cells see the same objects with and without quick runs
(``tests/test_quick_runs.py`` checks it for the landscape notebook by running its graded
cells with and without the demonstration cells).
"""

from __future__ import annotations

import os
from typing import TypeVar

QUICK_VARIABLE = "COURSE_QUICK"
NBGRADER_VARIABLE = "NBGRADER_EXECUTION"  # set by nbgrader in the kernels it starts

Size = TypeVar("Size", int, float)


def quick_runs() -> bool:
    """True when demonstration runs should be shortened: ``COURSE_QUICK`` set (and not "0"),
    or nbgrader executing the notebook (autograde, Validate)."""
    return (os.environ.get(QUICK_VARIABLE, "").strip() not in ("", "0")
            or bool(os.environ.get(NBGRADER_VARIABLE)))


def demo_size(full: Size, quick: Size) -> Size:
    """The size of a demonstration run (epochs, steps, grid points, digits): ``full``, or the
    smaller ``quick`` when quick runs are on. Use it only where no graded cell reads the result."""
    for name, value in (("full", full), ("quick", quick)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"demo_size needs positive numbers, got {name}={value!r}")
    if quick > full:
        raise ValueError(f"demo_size(full={full}, quick={quick}): the quick size should not exceed the full one")
    return quick if quick_runs() else full
