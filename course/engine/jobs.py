"""The values that cross between the parent and a grading worker: a Job in, a Result out.

A Job is everything a worker needs to grade one submission; a Result is what it found
(a status from a fixed set, messages, review flags, the executed notebooks); an Outcome
is the line the report prints. They cross a process boundary (a Dask worker, possibly on
another machine) as JSON and are validated on arrival: nothing produced next to student
code is ever unpickled. This module imports nothing of the course but its settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum

from ..config import Limits


class Status(Enum):
    """The value is the word printed in the report."""

    GRADED = "graded"
    UP_TO_DATE = "up to date"
    FLAGGED = "flagged"  # graded, but a person should look: possible tampering
    LIMIT = "limit hit"  # graded; what a sandbox limit stopped scores zero
    ERROR = "error"  # not graded (unreadable, refused, nbgrader failed): nothing recorded

    @property
    def recorded(self) -> bool:
        """Whether the gradebook holds a score for a submission with this status."""
        return self is not Status.ERROR


@dataclass(frozen=True)
class Outcome:
    student: str
    assignment: str
    status: Status
    message: str = ""
    flags: tuple[str, ...] = ()  # why a person should review it (FLAGGED)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status.recorded


@dataclass
class Result:
    """One submission graded on a worker, before the parent records it.

    ``notebooks`` maps notebook name (without .ipynb) to nbgrader's autograded
    notebook as JSON text; the parent re-validates each one and recomputes every score.
    """

    student: str
    assignment: str
    status: Status
    message: str = ""
    flags: list[str] = field(default_factory=list)
    notebooks: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    timestamp: str | None = None
    seconds: float = 0.0
    ran_on: dict[str, str] = field(default_factory=dict)  # how the kernel ran (worker.ran_on): for the receipt

    def to_json(self) -> str:
        data = dict(self.__dict__, status=self.status.value)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "Result":
        """Parse and validate: anything malformed raises ValueError naming the field."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a grading result must be a JSON object")
        expected = {"student": str, "assignment": str, "status": str, "message": str, "flags": list,
                    "notebooks": dict, "fingerprint": str, "timestamp": (str, type(None)), "seconds": (int, float),
                    "ran_on": dict}
        if set(data) != set(expected):
            raise ValueError(f"a grading result has the fields {sorted(data)}, expected {sorted(expected)}")
        for key, kind in expected.items():
            if not isinstance(data[key], kind):
                raise ValueError(f"field {key!r} of a grading result has the wrong type")
        if not all(isinstance(f, str) for f in data["flags"]):
            raise ValueError("flags of a grading result must be strings")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data["notebooks"].items()):
            raise ValueError("notebooks of a grading result must map names to JSON text")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data["ran_on"].items()):
            raise ValueError("ran_on of a grading result must map names to text")
        data["status"] = Status(data["status"])  # ValueError for an unknown status
        return cls(**data)

    def outcome(self) -> Outcome:
        return Outcome(self.student, self.assignment, self.status, self.message, tuple(self.flags), self.seconds)


@dataclass(frozen=True)
class Job:
    """One submission to grade: everything a worker needs, as plain JSON-able values.

    ``root`` is absolute: a worker on another machine needs the course on a shared file system.
    """

    root: str
    assignment: str
    student: str
    fingerprint: str
    unsafe: bool
    limits: Limits
    max_notebook_mb: int
    notebooks: tuple[str, ...]  # notebook names (without .ipynb) registered for the assignment
    # The kernel's variant settings (config.VariantSettings.kernel_environment): the sandbox
    # has no course.toml. The student's id is ``student``, never the id typed in the notebook.
    variants: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        data = json.loads(text)
        data["notebooks"] = tuple(data["notebooks"])
        data["limits"] = Limits.from_dict(data["limits"])
        variants = data.get("variants", {})
        if not isinstance(variants, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in variants.items()):
            raise ValueError("variants of a job must map names to text")
        return cls(**data)
