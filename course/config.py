"""Where things live and what the course is called: the one place for paths.

Everything is relative to the repository root, so the tooling works from any
clone and from any working directory.
"""

from __future__ import annotations

try:  # Python 3.11+ reads TOML itself; 3.10 uses the identical tomli package
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path



@dataclass(frozen=True)
class Layout:
    """The folders of a course, under its root: this checkout's (``LAYOUT``), or the one a
    grading worker sees (a Job names the root, which a worker on another machine reaches on a
    shared file system)."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def release(self) -> Path:
        return self.root / "release"

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded(self) -> Path:
        return self.root / "autograded"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def reports(self) -> Path:
        """Pages and tables for the instructor (similarity, dashboard); not committed."""
        return self.root / "reports"

    def submission(self, student: str, assignment: str) -> Path:
        """What a student handed in: ``submitted/<student>/<assignment>/``."""
        return self.submitted / student / assignment

    def graded(self, student: str, assignment: str) -> Path:
        """The recorded autograded copy: ``autograded/<student>/<assignment>/``."""
        return self.autograded / student / assignment

    def graded_stamp(self, student: str, assignment: str) -> Path:
        """What a recorded grade was computed from (course/engine/plan.py skips it while equal)."""
        return self.graded(student, assignment) / ".graded-from"

    def pages(self, student: str, assignment: str) -> Path:
        """The feedback pages a student gets back: ``feedback/<student>/<assignment>/``."""
        return self.feedback / student / assignment

    def receipt(self, student: str, assignment: str) -> Path:
        """What a recorded grade was computed from, and what it was (course/receipts.py)."""
        return self.graded(student, assignment) / "receipt.json"

    @property
    def review_log(self) -> Path:
        """The review decisions, appended and never rewritten (course/review.py)."""
        return self.root / "review.jsonl"

    def staging(self, assignment: str) -> Path:
        """A regrade's staged records before ``--apply`` (course/commands/regrade.py)."""
        return self.root / "regrade" / assignment


ROOT = Path(__file__).resolve().parent.parent
LAYOUT = Layout(ROOT)
SOURCE = LAYOUT.source
RELEASE = LAYOUT.release
SUBMITTED = LAYOUT.submitted
AUTOGRADED = LAYOUT.autograded
FEEDBACK = LAYOUT.feedback
SAMPLES = LAYOUT.samples
GRADEBOOK = LAYOUT.gradebook
REPORTS = LAYOUT.reports
MUTATIONS = ROOT / "mutations"  # the mutation suites and their likely causes (course/commands/causes.py)
GRADES_CSV = ROOT / "grades.csv"
SETTINGS_FILE = ROOT / "course.toml"

# Code that notebooks import at run time, besides the assignment's own folder: the helper
# package, the hidden test functions (never released) and the loss-landscape modules.
# The one list: the grading fingerprint, the release stamp, the grading sandbox's view of
# the course and the tests' copies of the course all read it.
HELPERS = ("utils", "hidden_tests", "plot_loss.py", "loss_landscape", "convert_net.py")
# Helpers that hold instructor-only code: never copied into what students get (publish).
PRIVATE_HELPERS = ("hidden_tests",)
# Everything a copy of the course needs to release, build samples and grade.
# (mutations/: the likely causes the grader names, mutations/<assignment>.causes.json)
COURSE_FILES = ("source", "release", "samples", "mutations", "course", "course.toml", "nbgrader_config.py", *HELPERS)


def helper_paths() -> list[Path]:
    """The helpers that exist in this checkout (an assignment may not need them all yet)."""
    return [ROOT / name for name in HELPERS if (ROOT / name).exists()]


def causes_file(assignment: str, mutations: Path | None = None) -> Path:
    """The likely causes the grader names for an assignment (written by ``course causes``)."""
    return (mutations or MUTATIONS) / f"{assignment}.causes.json"


def helper_module(name: str):
    """A module of the course helpers (``utils/<name>.py``) that imports nothing of its package,
    loaded from its file: ``utils/__init__`` imports torch (seconds), which the grader's parent
    and the command line never need. Loaded once per process."""
    import importlib.util
    import sys

    key = f"utils.{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "utils" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def published_helpers() -> list[Path]:
    """The helpers students get with the published tree: HELPERS minus PRIVATE_HELPERS."""
    return [path for path in helper_paths() if path.name not in PRIVATE_HELPERS]


class CourseError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback."""


@dataclass(frozen=True)
class Settings:
    course_id: str
    repository: str  # "owner/name" on GitHub
    branch: str
    colab_packages: dict[str, str]  # module name -> pip requirement
    due: dict[str, datetime] = field(default_factory=dict)  # assignment -> due date (with offset)
    grading: GradingSettings = field(default_factory=lambda: GradingSettings())  # [grading]; defaults where absent
    variants: VariantSettings = field(default_factory=lambda: VariantSettings())  # [variants]

    @property
    def repository_url(self) -> str:
        return f"https://github.com/{self.repository}.git"


@dataclass(frozen=True)
class Limits:
    """What one submission may use while it is graded (course.toml ``[grading]``; 0: no limit).

    The defaults here are the course's defaults: course.toml, the sandbox (course/engine/
    sandbox.py) and the worker all take them from this class."""

    memory_mb: int = 2048  # address space of each process of a submission
    pids: int = 1024  # processes and threads of the sandbox user
    cpu_s: int = 600  # CPU seconds of each process
    open_files: int = 1024
    file_size_mb: int = 256  # largest file a submission may write
    wall_s: int = 900  # wall-clock limit of one submission, all its notebooks together
    cell_s: int = 120  # a cell's run time before it is interrupted (and fails)

    @classmethod
    def from_dict(cls, data: dict) -> "Limits":
        """From JSON (a Job crossing to a worker): exactly the fields, whole numbers >= 0."""
        fields = set(cls.__dataclass_fields__)
        if not isinstance(data, dict) or set(data) != fields:
            raise ValueError(f"limits must have exactly the fields {sorted(fields)}")
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in data.values()):
            raise ValueError("limits must be whole numbers >= 0")
        return cls(**data)


@dataclass(frozen=True)
class GradingSettings:
    """The grading sandbox's limits and the size of the pool (course.toml ``[grading]``)."""

    workers: int = 0  # 0: one per CPU core
    max_notebook_mb: int = 100  # larger submitted notebooks are refused unread
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_table(cls, table: dict) -> "GradingSettings":
        own = {f for f in cls.__dataclass_fields__ if f != "limits"}
        of_limits = set(Limits.__dataclass_fields__)
        unknown = sorted(set(table) - own - of_limits)
        if unknown:
            raise CourseError(f"[grading] has unknown settings {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(own | of_limits))}")
        bad = [k for k, v in table.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
        if bad:
            raise CourseError(f"[grading] settings must be whole numbers >= 0: {', '.join(bad)}")
        limits = Limits(**{k: v for k, v in table.items() if k in of_limits})
        return cls(**{k: v for k, v in table.items() if k in own}, limits=limits)


@dataclass(frozen=True)
class VariantSettings:
    """Per-student variants (course.toml ``[variants]``; utils/variant.py computes them): the
    course's salt, and the assignments whose exercises use the default numbers for everyone."""

    salt: str = ""
    off: frozenset[str] = frozenset()

    @classmethod
    def from_table(cls, table: dict) -> "VariantSettings":
        unknown = sorted(set(table) - {"salt", "off"})
        if unknown:
            raise CourseError(f"[variants] has unknown settings {', '.join(unknown)}; known: off, salt")
        off = table.get("off", [])
        if not isinstance(table.get("salt", ""), str) or not isinstance(off, list) \
                or not all(isinstance(a, str) for a in off):
            raise CourseError('[variants]: salt is a string and off a list of assignment names, like off = ["mnist"]')
        return cls(table.get("salt", ""), frozenset(off))

    @classmethod
    def from_kernel_environment(cls, env: dict[str, str]) -> "VariantSettings":
        """The settings a Job carries (``kernel_environment``), back."""
        off = frozenset(a for a in env.get("COURSE_VARIANTS_OFF", "").split(",") if a)
        return cls(env.get("COURSE_VARIANT_SALT", ""), off)

    def kernel_environment(self) -> dict[str, str]:
        """What a grading kernel needs to compute variants without course.toml (utils/variant.py)."""
        return {"COURSE_VARIANT_SALT": self.salt, "COURSE_VARIANTS_OFF": ",".join(sorted(self.off))}


@cache
def settings(path: Path = SETTINGS_FILE) -> Settings:
    try:
        data = load_toml(path)
    except FileNotFoundError:
        raise CourseError(f"course settings not found: {path}") from None
    except TOMLDecodeError as exc:
        raise CourseError(f"{path} is not valid TOML: {exc}") from None
    try:
        colab = data["colab"]
        return Settings(
            course_id=data["course"]["id"],
            repository=colab["repository"],
            branch=colab["branch"],
            colab_packages=dict(colab.get("packages", {})),
            due=_due_dates(data.get("due", {}), path),
            grading=GradingSettings.from_table(data.get("grading", {})),
            variants=VariantSettings.from_table(data.get("variants", {})),
        )
    except KeyError as exc:
        raise CourseError(f"{path} lacks the setting {exc}") from None


def _due_dates(table: dict, path: Path) -> dict[str, datetime]:
    for name, when in table.items():
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise CourseError(f"{path}: due.{name} must be a date and time with its UTC offset, "
                              f"like 2026-11-20T23:59:00+01:00 (got {when!r})")
    return dict(table)


def assignments() -> list[str]:
    """Assignment names: every folder of source/ that holds a notebook."""
    if not SOURCE.is_dir():
        raise CourseError(f"{SOURCE} does not exist: run this from a clone of the course")
    return sorted(p.name for p in SOURCE.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def load_toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


TOMLDecodeError = tomllib.TOMLDecodeError


def check_assignment(name: str) -> str:
    known = assignments()
    if name not in known:
        raise CourseError(f"unknown assignment {name!r}; the course has: {', '.join(known)}")
    return name
