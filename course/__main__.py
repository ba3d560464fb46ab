"""``python -m course``: run the command, then leave without tearing the interpreter down.

A grading command loads about 1,400 modules (nbgrader, its database layer, nbconvert);
Python's orderly shutdown frees them one by one, about a third of a second per command, more
than the command's own start-up. Everything the commands write is closed and committed when
``main`` returns, so the process flushes its output, runs the exit handlers (logging's, the
temporary folders' finalizers) and ends with ``os._exit``.
"""

import atexit
import os
import sys

from .cli import main


def _leave(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more to say there
            pass
    atexit._run_exitfuncs()
    os._exit(code)


try:
    status = main()
except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)  # `course grade` keeps each grade recorded before it
    status = 130
_leave(status if isinstance(status, int) else 0 if status is None else 1)
