"""The mutation suite: correct variants must get full marks, plausible mistakes must lose
points in the cell they belong to, judged by the notebook's real test cells.

``mutations/<assignment>.toml`` lists cases in the cell-replacement schema of the sample
submissions (``samples/<assignment>/samples.toml``): each case replaces solution cells, by
grade id, with other code, and declares the test cells that must fail (none for a correct
variant). Where the sample submissions prove the pipeline end to end with nbgrader, this
suite proves the *tests* both ways, many cases per exercise, in seconds:

* the instructor notebook runs once, in this process, with the reference solutions
  (code cells as they are; solution delimiters dropped);
* at the first cell a case replaces, the process forks: the child runs the rest of the
  notebook with the case's cells, up to the case's last test cell, and records every test
  cell that raised or wrote to stderr (nbgrader's rule for a failed test cell);
* the parent reads the child's verdict as JSON from a pipe, kills it after a time limit,
  and goes on with the reference cell. A child shares nothing with other cases: fork copies
  the whole interpreter, so a case that mutates a model or a global cannot leak.

Trust: the cases are instructor code, run with the instructor's privileges. They are never
student submissions; those are graded by nbgrader (course/grading.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import signal
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader import utils as nbutils

from .config import ROOT, SOURCE, CourseError, TOMLDecodeError, check_assignment, load_toml
from .samples import strip_solution_delimiters

MUTATIONS = ROOT / "mutations"
KINDS = ("correct", "mistake")
WEAKNESSES = ("figure", "rule", "data", "cascade", "values", "advice")
CASE_TIMEOUT = 120.0  # seconds; the slowest case runs a few training loops


@dataclass(frozen=True)
class Cell:
    index: int
    grade_id: str
    source: str
    is_solution: bool
    is_test: bool


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    about: str
    cells: dict[str, str]
    fails: tuple[str, ...] = ()
    through: str | None = None
    weakness: str | None = None


@dataclass(frozen=True)
class Verdict:
    case: Case
    ran: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)  # test cell -> first line of its error
    error: str = ""  # why the case could not be judged (timeout, crash)

    @property
    def ok(self) -> bool:
        return not self.error and set(self.failed) == set(self.case.fails) and not self.unhelpful

    @property
    def unhelpful(self) -> dict[str, str]:
        """For cases about advice: failures that are not an AssertionError with a message."""
        if self.case.weakness != "advice":
            return {}
        return {k: v for k, v in self.failed.items() if not v.startswith("AssertionError: ")}

    def explain(self) -> str:
        if self.error:
            return f"{self.case.id}: {self.error}"
        if self.case.kind == "correct":
            return f"{self.case.id} (correct) lost points in: " + "; ".join(f"{k}: {v}" for k, v in self.failed.items())
        missed = sorted(set(self.case.fails) - set(self.failed))
        extra = {k: v for k, v in self.failed.items() if k not in self.case.fails}
        parts = [f"not caught by {', '.join(missed)}"] if missed else []
        parts += [f"also failed {k}: {v}" for k, v in extra.items()]
        parts += [f"{k} fails without advice (a test should raise AssertionError with a message): {v}"
                  for k, v in self.unhelpful.items()]
        return f"{self.case.id} (mistake): " + "; ".join(parts)


def spec_path(assignment: str) -> Path:
    return MUTATIONS / f"{assignment}.toml"


def assignments_with_cases() -> list[str]:
    return sorted(p.stem for p in MUTATIONS.glob("*.toml")) if MUTATIONS.is_dir() else []


def load(assignment: str) -> list[Case]:
    path = spec_path(assignment)
    try:
        entries = load_toml(path)["cases"]
    except FileNotFoundError:
        raise CourseError(f"{path} does not exist: write the assignment's mutation cases there") from None
    except (TOMLDecodeError, KeyError) as exc:
        raise CourseError(f"{path}: expected [cases.<id>] tables ({exc})") from None
    cases = []
    for case_id, entry in entries.items():
        case = Case(
            id=case_id,
            kind=entry.get("kind", ""),
            about=entry.get("about", ""),
            cells=dict(entry.get("cells", {})),
            fails=tuple(entry.get("fails", ())),
            through=entry.get("through"),
            weakness=entry.get("weakness"),
        )
        if case.kind not in KINDS:
            raise CourseError(f"{path}: cases.{case_id}.kind must be one of {', '.join(KINDS)}")
        if (case.kind == "correct") == bool(case.fails):
            raise CourseError(f"{path}: cases.{case_id}: a correct variant fails no cell, a mistake fails at least one")
        if case.weakness is not None and case.weakness not in WEAKNESSES:
            raise CourseError(f"{path}: cases.{case_id}.weakness must be one of {', '.join(WEAKNESSES)}")
        if not case.cells:
            raise CourseError(f"{path}: cases.{case_id} replaces no cell")
        cases.append(case)
    return cases


def notebook_cells(assignment: str) -> list[Cell]:
    """The code cells of the assignment's one source notebook, solutions as the reference."""
    notebooks = sorted((SOURCE / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise CourseError(f"source/{assignment} should hold one notebook for the mutation suite, not {len(notebooks)}")
    nb = nbformat.read(notebooks[0], as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id", f"cell-{len(cells)}"))
        solution = nbutils.is_solution(cell)
        source = strip_solution_delimiters(cell.source) if solution else cell.source
        cells.append(Cell(len(cells), grade_id, source, solution, nbutils.is_grade(cell) and not solution))
    return cells


def tests_of(cells: list[Cell], index: int) -> list[Cell]:
    """The test cells that check the solution cell at ``index``: those before the next solution cell."""
    tests = []
    for cell in cells[index + 1:]:
        if cell.is_solution:
            break
        if cell.is_test:
            tests.append(cell)
    return tests


def _plan(case: Case, cells: list[Cell], path: Path) -> tuple[int, int]:
    """(first cell to replace, last cell to run) of a case, checked against the notebook."""
    by_id = {c.grade_id: c for c in cells}
    for grade_id in case.cells:
        cell = by_id.get(grade_id)
        if cell is None or not cell.is_solution:
            raise CourseError(f"{path}: cases.{case.id} replaces {grade_id!r}, which is not a solution cell of the notebook")
    for grade_id in (*case.fails, *([case.through] if case.through else [])):
        if grade_id not in by_id or not (by_id[grade_id].is_test or grade_id == case.through):
            raise CourseError(f"{path}: cases.{case.id} names {grade_id!r}, which is not a test cell of the notebook")
    first = min(by_id[g].index for g in case.cells)
    last_replaced = max(by_id[g].index for g in case.cells)
    own_tests = tests_of(cells, last_replaced)
    ends = [c.index for c in own_tests] + [by_id[g].index for g in case.fails]
    if case.through:
        ends = [by_id[case.through].index]
    if not ends:
        raise CourseError(f"{path}: cases.{case.id}: no test cell follows the replaced cells; name one with `through`")
    return first, max(ends)


class _Session:
    """Runs cell sources in one namespace the way a kernel would, with nbgrader's failure rule."""

    def __init__(self, workdir: Path):
        self.namespace: dict = {"__name__": "__main__"}
        self.workdir = workdir
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            self._transform = TransformerManager().transform_cell
        except ImportError:  # pragma: no cover - IPython ships with ipykernel
            self._transform = lambda source: source

    def run(self, cell: Cell, source: str | None = None) -> str | None:
        """Execute a cell; the first line of its failure, or None if it passed.

        Text on stderr fails a test cell only: nbgrader scores only test cells."""
        source = self._transform(cell.source if source is None else source)
        stderr = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(stderr):
                warnings.simplefilter("ignore")  # nbgrader_config.py drops warnings on stderr too
                exec(compile(source, f"<{cell.grade_id}>", "exec"), self.namespace)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a test cell fails on anything it raises, SystemExit included
            lines = traceback.format_exception_only(type(exc), exc)
            return (lines[-1].strip() if lines else type(exc).__name__)[:500]
        if cell.is_test and stderr.getvalue().strip():
            return f"wrote to stderr: {stderr.getvalue().strip().splitlines()[0][:300]}"
        return None


def _quiet() -> None:
    """No windows, no browser, no progress bars: figures are built, never shown."""
    import matplotlib

    os.environ["COURSE_NO_PROGRESS"] = "1"  # utils.progress, as while nbgrader grades
    os.environ["COURSE_QUICK"] = "1"  # shorter demonstration runs, as while nbgrader grades (utils/quick.py)
    matplotlib.use("Agg")
    try:
        import plotly.basedatatypes

        plotly.basedatatypes.BaseFigure.show = lambda self, *args, **kwargs: None
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        # One thread: faster on shared 2-core machines, and a forked child never inherits
        # a half-used OpenMP thread pool.
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _child(session: _Session, case: Case, cells: list[Cell], first: int, last: int) -> dict:
    ran, failed = [], {}
    for cell in cells[first:last + 1]:
        failure = session.run(cell, case.cells.get(cell.grade_id))
        if cell.is_test:
            ran.append(cell.grade_id)
            if failure:
                failed[cell.grade_id] = failure
    return {"ran": ran, "failed": failed}


def _fork(session: _Session, case: Case, cells: list[Cell], first: int, last: int, timeout: float) -> Verdict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the case, write its verdict, never return into the parent's code
        os.close(read_end)
        try:
            payload = json.dumps(_child(session, case, cells, first, last))
        except BaseException as exc:  # noqa: BLE001 - anything at all becomes the case's error
            payload = json.dumps({"error": f"the runner failed: {exc!r}"})
        with os.fdopen(write_end, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Verdict(case, error=f"did not finish within {timeout:.0f} s")
            ready, _, _ = select.select([pipe], [], [], left)
            if ready:
                chunk = os.read(pipe.fileno(), 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    try:
        result = json.loads(b"".join(chunks))
    except ValueError:
        return Verdict(case, error=f"the case ended the process (wait status {status}) before it was judged")
    if "error" in result:
        return Verdict(case, error=result["error"])
    return Verdict(case, ran=tuple(result["ran"]), failed=dict(result["failed"]))


def run(assignment: str, only: list[str] | None = None, timeout: float = CASE_TIMEOUT) -> list[Verdict]:
    """Judge every case of ``assignment`` (or those whose ids are in ``only``)."""
    check_assignment(assignment)
    path = spec_path(assignment)
    cases = [c for c in load(assignment) if not only or c.id in only]
    cells = notebook_cells(assignment)
    plans = {case.id: _plan(case, cells, path) for case in cases}
    _quiet()
    verdicts: dict[str, Verdict] = {}
    with tempfile.TemporaryDirectory(prefix=f"mutations-{assignment}-") as tmp:
        workdir = Path(tmp) / assignment
        shutil.copytree(SOURCE / assignment, workdir)  # the notebook's data files, in a scratch copy
        previous = Path.cwd()
        os.chdir(workdir)
        try:
            session = _Session(workdir)
            for cell in cells:
                for case in (c for c in cases if plans[c.id][0] == cell.index):
                    verdicts[case.id] = _fork(session, case, cells, cell.index, plans[case.id][1], timeout)
                failure = session.run(cell)
                if failure:
                    raise CourseError(f"the instructor notebook of {assignment} fails in {cell.grade_id}: {failure}")
        finally:
            os.chdir(previous)
    return [verdicts[c.id] for c in cases]


def summary(assignment: str, verdicts: list[Verdict]) -> str:
    correct = [v for v in verdicts if v.case.kind == "correct"]
    mistakes = [v for v in verdicts if v.case.kind == "mistake"]
    return (f"{assignment:<12} correct variants full marks {sum(v.ok for v in correct)}/{len(correct)}, "
            f"mistakes caught {sum(v.ok for v in mistakes)}/{len(mistakes)}")


def coverage(assignment: str, cases: list[Case] | None = None) -> dict[str, tuple[int, int]]:
    """test cell -> (correct variants that reach it through their own solution cell, mistakes it must catch)."""
    cases = load(assignment) if cases is None else cases
    cells = notebook_cells(assignment)
    by_id = {c.grade_id: c for c in cells}
    counts = {c.grade_id: [0, 0] for c in cells if c.is_test}
    for case in cases:
        if case.kind == "correct":
            targets = {t.grade_id for g in case.cells if g in by_id for t in tests_of(cells, by_id[g].index)}
        else:
            targets = set(case.fails)
        for target in targets & counts.keys():
            counts[target][0 if case.kind == "correct" else 1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
