"""Run nbgrader commands for the course, in the course root, with nbgrader_config.py (and load
that file for the nbgrader steps the course runs in its own process).

Each command runs in its own process: a crash while grading one submission
cannot take the rest of a grading run down, and the caller gets nbgrader's
log when something fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

from .config import ROOT, CourseError, settings


@dataclass
class Result:
    args: list[str]
    returncode: int
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def errors(self) -> list[str]:
        """Why a run failed: the exceptions nbgrader's tracebacks end in, else its ERROR lines."""
        lines = [line.strip() for line in self.log.splitlines()]
        raised = [line for line in lines if EXCEPTION_LINE.match(line)]
        return raised or [line for line in lines if "ERROR" in line or "CRITICAL" in line]


CONFIG_FAILED = "Exception while loading config file"
# The last line of a traceback: "package.module.SomeError: what went wrong".
EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Entry|Timeout)\w*: .+")


def run(*args: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
    settings()  # a broken course.toml is reported here, before nbgrader runs
    command = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader calls helper programs (alembic, for a new gradebook) by name: put this
    # environment's scripts first on PATH, even if the virtual environment is not activated.
    scripts = os.path.dirname(sys.executable)
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = os.pathsep.join([scripts, full_env.get("PATH", "")])
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=full_env)
    result = Result(list(args), proc.returncode, proc.stdout + proc.stderr)
    if CONFIG_FAILED in result.log:
        # nbgrader logs a broken config and carries on with its defaults, which would
        # release without Colab cells and show hidden tests in feedback: stop instead.
        last = [line.strip() for line in result.log.splitlines() if line.strip()]
        cause = next((line for line in reversed(last) if "Error" in line and CONFIG_FAILED not in line), "")
        raise CourseError(f"nbgrader_config.py could not be loaded: {cause}")
    if check and not result.ok:
        details = "\n".join(result.errors()[-10:]) or result.log[-3000:]
        raise CourseError(f"nbgrader {' '.join(args)} failed:\n{details}")
    return result


@cache
def nbgrader_config():
    """nbgrader_config.py, loaded once per process: the settings of the nbgrader steps the
    course runs itself (recording, feedback pages). A config that does not load stops here
    with its cause: carrying on with nbgrader's defaults would show hidden tests."""
    from traitlets.config.loader import PyFileConfigLoader

    settings()
    try:
        return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    except Exception as exc:
        raise CourseError(f"nbgrader_config.py could not be loaded: {type(exc).__name__}: {exc}") from exc
