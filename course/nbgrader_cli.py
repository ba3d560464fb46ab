"""Run nbgrader commands for the course, in the course root, with nbgrader_config.py.

Each command runs in its own process: a crash while grading one submission
cannot take the rest of a grading run down, and the caller gets nbgrader's
log when something fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from .config import ROOT, CourseError


@dataclass
class Result:
    args: list[str]
    returncode: int
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def errors(self) -> list[str]:
        """nbgrader's ERROR and CRITICAL log lines: the reason a run failed."""
        return [line for line in self.log.splitlines() if "ERROR" in line or "CRITICAL" in line]


def run(*args: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
    command = [sys.executable, "-m", "nbgrader", *args]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=full_env)
    result = Result(list(args), proc.returncode, proc.stdout + proc.stderr)
    if check and not result.ok:
        details = "\n".join(result.errors()[-10:]) or result.log[-3000:]
        raise CourseError(f"nbgrader {' '.join(args)} failed:\n{details}")
    return result
