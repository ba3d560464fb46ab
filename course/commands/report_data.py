"""What the course dashboard reads: the gradebook, the graded notebooks and the grading log.

Inputs, and only these (nothing is run again):

* the gradebook: each submission's ``Score`` (course/gradebook.py, the one home of totals),
  each graded cell's points, nbgrader's ``flagged``;
* ``autograded/<student>/<assignment>/<notebook>.ipynb``, the graded notebooks: where each
  failed test cell failed (a visible check, a hidden test, or it did not run), read with the
  feedback pages' own ``verdict`` (course/plugins/feedback.py); the cells where the kernel
  died (``DeadKernelError``, course/cells.py); the likely causes recorded for a failed cell;
* ``autograded/grading-log.jsonl``: status and time of each grading (course/engine/outcome_log.py);
* from ``source/``, only the order of the graded cells, the first visible line of each test
  cell (its title, hidden regions removed first) and the bonus cells' extra credit.

Threat: the graded notebooks hold the hidden tests (each test cell's full source) and
whatever the student's code printed while they ran. Nothing read here keeps a cell's source
beyond the title, nor any output or message: a failure is kept as its category only.

**Likely causes (a hook).** A graded test cell of an autograded notebook may carry, in its
metadata, ``"course": {"likely_causes": ["<cause>", ...]}``: the plausible mistakes whose
failure it matched: the diagnoses of ``mutations/<assignment>.causes.json`` that the
recording (course/engine/recording.py) looked up for the cell's failure message.
The dashboard counts them per cell for the submissions that failed it; a cell without the
key shows "—". Whatever writes the key must be the parent, after recording, on every test
cell it diagnoses: the ``course`` metadata of a submitted cell reaches ``autograded/``
unchanged (only nbgrader's own is put back), so an old or planted value must be replaced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import nbformat
from nbgrader.api import MissingEntry

from .. import cells
from ..config import LAYOUT, Layout
from ..engine import outcome_log
from ..engine.recording import NOT_RUN
from ..gradebook import Score, open_gradebook, submissions
from ..plugins.feedback import verdict, visible_source
from ..review import read_log, standing

LIKELY_CAUSES = cells.LIKELY_CAUSES  # key in a graded cell's metadata.course (see the module docstring)
TITLE_CHARS = 80


class Where:
    """Where a failed test cell failed: the categories the page counts."""

    VISIBLE = "visible"  # a visible check of the test cell (the student could see it fail)
    HIDDEN = "hidden"  # a hidden test
    NOT_RUN = "did not run"  # the kernel died, a time limit stopped it, or it never ran
    OTHER = "other"  # wrote to stderr, or failed without a line of the test cell in its traceback
    ALL = (VISIBLE, HIDDEN, NOT_RUN, OTHER)


@dataclass(frozen=True)
class Cell:
    """A graded cell of the assignment, as the dashboard names it."""

    notebook: str
    grade_id: str
    title: str
    kind: str  # "test", "bonus" (extra credit) or "answer" (written, graded by a person)
    points: float  # its maximum; a bonus cell's extra credit

    @property
    def key(self) -> tuple[str, str]:
        return self.notebook, self.grade_id


@dataclass(frozen=True)
class Failure:
    where: str  # one of Where.ALL
    causes: tuple[str, ...] = ()  # likely causes recorded for the cell (the hook above)


@dataclass
class Submission:
    score: Score
    flagged: bool  # nbgrader's flag: the grader marked it for review
    held: bool  # its grade waits for a person before it counts (``held``)
    points: dict[tuple[str, str], float | None]  # cell key -> points earned (None: a written answer pending)
    failed: set[tuple[str, str]] = field(default_factory=set)  # test cells below full marks, bonus cells not won
    failures: dict[tuple[str, str], Failure] = field(default_factory=dict)  # where each failed (notebooks read)
    deaths: tuple[str, ...] = ()  # cells in which the kernel died
    log: outcome_log.Entry | None = None  # its latest grading, if logged

    @property
    def student(self) -> str:
        return self.score.student


@dataclass
class ClassData:
    """One assignment: its graded cells, in notebook order, and every graded submission."""

    assignment: str
    cells: list[Cell]
    submissions: list[Submission]
    unrecorded: list[outcome_log.Entry] = field(default_factory=list)  # logged errors with no grade


def held(layout: Layout, student: str, assignment: str, events: list[dict]) -> bool:
    """Whether a recorded grade waits for a person before it counts: the one place the dashboard
    asks, answered by the review workflow (course/review.py: flagged and no decision in force)."""
    return standing(student, assignment, layout, events).held


def _cells(assignment: str, notebook: str, registered: dict[str, float], answers: set[str],
           layout: Layout) -> list[Cell]:
    """The registered grade cells, in the order of the source notebook (registration order
    where it lacks one), titled by their first visible line."""
    path = layout.source / assignment / f"{notebook}.ipynb"
    nb = nbformat.read(path, as_version=4) if path.exists() else nbformat.v4.new_notebook()
    order = {cells.grade_id(c): i for i, c in enumerate(nb.cells) if cells.grade_id(c)}
    by_id = {cells.grade_id(c): c for c in nb.cells if cells.grade_id(c)}
    found = []
    for gid in sorted(registered, key=lambda g: order.get(g, len(order))):
        source = by_id[gid] if gid in by_id else None
        bonus = cells.bonus(source) if source is not None else None
        kind = "answer" if gid in answers else "bonus" if bonus is not None else "test"
        found.append(Cell(notebook, gid, _title(kind, gid, source), kind,
                          bonus if kind == "bonus" else registered[gid]))
    return found


def _title(kind: str, gid: str, source) -> str:
    if kind == "answer" or source is None:
        return f"written answer {gid}" if kind == "answer" else gid
    try:
        shown = visible_source(source.source)
    except ValueError:  # a malformed hidden region: show nothing of the cell
        return gid
    first = next((line for line in shown.splitlines() if line.strip()), "")
    return first.lstrip("#").strip()[:TITLE_CHARS] or gid


def _grades(assignment: str, layout: Layout) -> tuple[list[Cell], dict[str, tuple[bool, dict]]]:
    """The assignment's cells, and student -> (flagged, cell key -> (points without extra credit,
    extra credit, waits for a person, max)), read in one gradebook session."""
    with open_gradebook(layout.gradebook) as gb:
        try:
            record = gb.find_assignment(assignment)
        except MissingEntry:
            return [], {}
        registered = {}
        for nb in record.notebooks:
            answers = {c.name for c in nb.solution_cells}
            registered[nb.name] = ({c.name: c.max_score for c in nb.grade_cells}, answers)
        students = {}
        for submission in record.submissions:
            flagged, grades = False, {}
            for snb in submission.notebooks:
                flagged |= bool(snb.flagged)
                answers = registered[snb.name][1]
                for g in snb.grades:
                    extra = g.extra_credit or 0.0
                    pending = g.name in answers and bool(g.needs_manual_grade)
                    grades[snb.name, g.name] = (g.score - extra, extra, pending, g.max_score)
            students[submission.student_id] = (flagged, grades)
    found = [c for name, (maxima, answers) in registered.items()
             for c in _cells(assignment, name, maxima, answers, layout)]
    return found, students


def _earned(cell: Cell, grade) -> tuple[float | None, bool]:
    """Points earned in ``cell`` and whether it failed (a test below full marks, a bonus not won)."""
    if grade is None:
        return 0.0, cell.kind != "answer"
    score, extra, pending, maximum = grade
    if cell.kind == "answer":
        return (None if pending else score), False
    if cell.kind == "bonus":
        return extra, extra <= 0
    return score, score < maximum


def load(assignment: str, layout: Layout = LAYOUT, scores: Iterable[Score] | None = None,
         notebooks: bool = True) -> ClassData:
    """Everything the dashboard shows of one assignment. ``scores``: the gradebook's, if the
    caller has read them already; ``notebooks=False`` reads the gradebook only (no failure
    categories, kernel deaths or causes: enough for the page across assignments)."""
    scores = [s for s in (submissions(layout.gradebook) if scores is None else scores) if s.assignment == assignment]
    found, grades = _grades(assignment, layout) if scores else ([], {})
    logged = outcome_log.latest(layout)
    events = read_log(layout)
    result = []
    for score in scores:
        flagged, by_cell = grades.get(score.student, (False, {}))
        sub = Submission(score, flagged, held(layout, score.student, assignment, events), {},
                         log=logged.get((score.student, assignment)))
        for cell in found:
            sub.points[cell.key], lost = _earned(cell, by_cell.get(cell.key))
            if lost:
                sub.failed.add(cell.key)
        if notebooks:
            _read_notebooks(sub, assignment, [c for c in found if c.key in sub.failed], layout)
        result.append(sub)
    graded = {s.student for s in scores}
    unrecorded = [e for (student, name), e in sorted(logged.items())
                  if name == assignment and student not in graded and not e.status.recorded]
    return ClassData(assignment, found, result, unrecorded)


def _read_notebooks(sub: Submission, assignment: str, failed: list[Cell], layout: Layout) -> None:
    """Failure categories, likely causes and kernel deaths from the graded notebooks. A notebook
    with no failed cell is parsed only if it mentions a kernel death."""
    folder = layout.graded(sub.student, assignment)
    deaths = []
    for notebook in sorted({c.notebook for c in failed} | {p.stem for p in folder.glob("*.ipynb")}):
        wanted = {c.grade_id for c in failed if c.notebook == notebook}
        try:
            raw = (folder / f"{notebook}.ipynb").read_bytes()
        except OSError:
            raw = b""
        if not wanted and cells.DIED.encode() not in raw:
            continue
        try:
            nb = json.loads(raw)
            graded = nb["cells"] if isinstance(nb, dict) else []
        except (ValueError, KeyError):  # gone or unreadable: the failures stay uncategorised
            graded = []
        by_id = {}
        for cell in graded:
            if not isinstance(cell, dict):
                continue
            if any(o.get("ename") == cells.DIED for o in cell.get("outputs", []) if isinstance(o, dict)):
                deaths.append(cells.name(cell))
            if cells.grade_id(cell) in wanted:
                by_id[cells.grade_id(cell)] = cell
        for gid in wanted:
            sub.failures[notebook, gid] = _failure(by_id.get(gid))
    sub.deaths = tuple(deaths)


def _failure(cell: dict | None) -> Failure:
    """The category of one failed cell (only ``where``: verdict's message is not kept)."""
    if cell is None:
        return Failure(Where.OTHER)
    causes = tuple(cells.likely_causes(cell))
    errors = [o for o in cell.get("outputs", []) if isinstance(o, dict) and o.get("output_type") == "error"]
    if errors and (errors[0].get("ename") in cells.KERNEL_ERRORS or errors[0].get("evalue") == NOT_RUN):
        return Failure(Where.NOT_RUN, causes)
    try:
        node = nbformat.from_dict({**cell, "source": _text(cell.get("source", "")),
                                   "outputs": [_output(o) for o in cell.get("outputs", []) if isinstance(o, dict)]})
        where = verdict(node, set(), {}, set()).get("where") or Where.OTHER
    except (ValueError, TypeError, AttributeError, KeyError):  # a malformed cell or hidden region
        where = Where.OTHER
    return Failure(where if where in Where.ALL else Where.OTHER, causes)


def _text(value) -> str:
    """Notebook files keep long strings as lists of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


def _output(output: dict) -> dict:
    return {**output, "text": _text(output["text"])} if "text" in output else output


def load_course(names: list[str], layout: Layout = LAYOUT, with_notebooks: Iterable[str] = ()) -> list[ClassData]:
    """Every assignment in ``names`` that has a graded submission, from one reading of the
    scores; graded notebooks are read only for the assignments in ``with_notebooks``."""
    scores = submissions(layout.gradebook)
    present = {s.assignment for s in scores}
    wanted = set(with_notebooks)
    return [load(name, layout, scores, notebooks=name in wanted) for name in names if name in present]
