"""Progress bars for long loops that stay out of the way of grading.

In Jupyter the bar is a widget, elsewhere text on stderr. While nbgrader
autogrades (it sets NBGRADER_EXECUTION in the kernel's environment) bars are
switched off: they would only clutter the feedback, and text on stderr in a
test cell costs the student the cell's points.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

DISABLE_VARIABLE = "COURSE_NO_PROGRESS"


def progress_enabled() -> bool:
    return not (os.environ.get("NBGRADER_EXECUTION") or os.environ.get(DISABLE_VARIABLE))


def progress(iterable: Iterable[T], desc: str | None = None, **kwargs) -> Iterable[T]:
    """Wrap an iterable in a progress bar: ``for epoch in progress(range(10), "epochs")``."""
    kwargs.setdefault("leave", False)
    return tqdm(iterable, desc=desc, disable=not progress_enabled(), **kwargs)
