"""Feedback pages built from what the student handed in, plus scores and one-line verdicts.

Threat: the graded run executes the hidden tests in the student's kernel, so anything that
kernel produced (printed text, pictures, error messages, the notebook file it could
rewrite) can carry hidden test code: ``print(In)``, ``inspect``, ``gc``, reading
``hidden_tests/*.py`` or the notebook in its working folder, encoded any way the student
likes. Scrubbing known lines from those outputs cannot catch an encoded copy. So the
page (``BuildFeedbackPage``, last in GenerateFeedback's pipeline, see nbgrader_config.py)
takes nothing from the graded run's outputs except, per graded cell:

* its score, read from the gradebook (and "pending" for a written answer no person has
  graded yet, instead of nbgrader's 0), and the grader's comment on a graded written answer;
* for a failed test cell, where it failed and one line of message. The failing line is
  found from the traceback's line number in the test cell, so a failed *visible* check is
  named and quoted as visible, and a failed hidden test as hidden. The message is shown
  only when grader code (the test cell, ``utils``, ``hidden_tests``) raised it; an
  exception raised in the student's own code (or a library it called) is named by type and
  place only, because its text is the student's to choose. Shown messages are capped at
  ``MAX_MESSAGE`` characters and lines that quote hidden code are withheld;
* for a failed test cell, the likely cause of its failure ("Likely cause: ..." or "Possible
  causes: a; b"), from the cell's ``course.likely_causes``, which the recording wrote from
  the course's own table (course/engine/recording.py): instructor text, never the run's.

Everything else comes from the submitted notebook (the student's cells and the outputs
they made on their own machine, where no hidden test ran) and from the gradebook's copy
of the instructor's cells with the hidden regions removed (what the release shows).
Residual channel, by design: a grader message may quote a value of the student's (a type
name, a shape); and the traceback itself comes from the student's kernel, which can forge
one (a replaced ``showtraceback``, for tamper checks during grading to catch). Either
way at most one line of ``MAX_MESSAGE`` characters per failed test cell gets out, with
every line that quotes hidden code withheld.

Plotly figures (``application/vnd.plotly.v1+json``, which nbconvert cannot draw) become
HTML drawn by a copy of plotly.js inlined into the page; formulas are rendered to MathML
by ``course.feedback_page``: the page needs no network.
"""

from __future__ import annotations

import builtins
import copy
import os
import re
from enum import Enum
from functools import cache
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor

from .. import cells, receipts, review
from ..config import LAYOUT, ROOT, SUBMITTED, Layout, helper_module
from ..gradebook import open_gradebook
from .colab import MARKER as COLAB_MARKER

WITHHELD_LINE = "[hidden test code withheld]"
MAX_MESSAGE = 300
PLOTLY = "application/vnd.plotly.v1+json"
# Outputs that need a live kernel or a CDN to show anything; their text/plain stays.
LIVE_ONLY = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")
GRADER_CODE = ("utils", "hidden_tests")
# The language the graded kernel (ipykernel) reports, from which pages pick the highlighter.
GRADED_LANGUAGE = {"name": "python", "pygments_lexer": "ipython3"}


class Verdict(Enum):
    """What the page says of a graded cell."""

    PASSED = "passed"
    FAILED = "failed"
    PENDING = "pending"  # a written answer no person has graded yet
    GRADED = "graded"  # a written answer a person has graded

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"^\s*Cell In\s*\[(\d+)\],\s*line (\d+)")
_FILE_FRAME = re.compile(r"^\s*File (.+?):(\d+)(?:, in |\s*$)")
_BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                   if isinstance(value, type) and issubclass(value, BaseException)}


# -- hidden code ---------------------------------------------------------------------------

def hidden_line_numbers(source: str) -> set[int]:
    """1-based numbers of the lines inside (and on) the hidden regions of a test cell."""
    return cells.region_lines(source, cells.HIDDEN_TESTS)


def visible_source(source: str) -> str:
    """The test cell as the release shows it: hidden regions removed."""
    return cells.without_region(source, cells.HIDDEN_TESTS)


def hidden_lines(sources, root: Path = ROOT) -> set[str]:
    """Lines of hidden code long enough to recognise: the hidden regions of the given cell
    sources and every line of the hidden_tests package."""
    lines = set()
    for source in sources:
        lines |= {line.strip() for line in cells.split_region(source, cells.HIDDEN_TESTS)[0]}
    for path in sorted((root / "hidden_tests").rglob("*.py")):
        lines |= {line.strip() for line in path.read_text(errors="replace").splitlines()}
    return {line for line in lines if len(line) >= cells.MIN_SECRET_LINE}


def scrub(text: str, secrets: set[str]) -> str:
    return "\n".join(WITHHELD_LINE if any(s in line for s in secrets) else line for line in text.split("\n"))


# -- what a failed test cell tells the student ------------------------------------------------

def _frames(traceback: list[str]) -> list[tuple[str, str, int]]:
    """(kind, where, line) for each frame: ("cell", execution count, line) or ("file", path, line)."""
    frames = []
    for entry in traceback:
        first = _ANSI.sub("", entry).lstrip("\n").split("\n", 1)[0]
        if m := _CELL_FRAME.match(first):
            frames.append(("cell", m.group(1), int(m.group(2))))
        elif m := _FILE_FRAME.match(first):
            frames.append(("file", m.group(1).strip(), int(m.group(2))))
    return frames


def _is_grader_file(path: str) -> bool:
    parts = Path(path).parts
    return len(parts) >= 2 and parts[-2] in GRADER_CODE and (ROOT / parts[-2] / parts[-1]).is_file()


def _is_library_file(path: str) -> bool:
    return "site-packages" in path or "dist-packages" in path or path.startswith("<") or "/lib/python3" in path


def verdict(cell, test_counts: set[str], cell_numbers: dict[str, int], secrets: set[str]) -> dict:
    """Where a graded test cell failed and what to tell the student, from its graded outputs.

    ``test_counts``: execution counts of the graded run's test cells (grader code);
    ``cell_numbers``: execution count -> position of that cell in the notebook (1-based).
    """
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    if not errors:
        if any(o.output_type == "stream" and o.name == "stderr" for o in cell.get("outputs", [])):
            return {"where": "", "message": "the cell wrote to stderr, which counts as a failure; "
                                            "run it yourself to see what printed there"}
        return {"where": "", "message": ""}
    error = errors[0]
    frames = _frames(error.get("traceback", []))
    in_cells = [f for f in frames if f[0] == "cell"]
    result = {"where": "", "line": None, "code": ""}
    full = cell.source
    if in_cells:
        line = in_cells[0][2]
        if line in hidden_line_numbers(full):
            result["where"] = "hidden"
        else:
            result["where"] = "visible"
            result["code"] = full.splitlines()[line - 1].strip() if 0 < line <= len(full.splitlines()) else ""
            result["line"] = 1 + sum(1 for n in range(1, line) if n not in hidden_line_numbers(full))
    # The deepest frame that is not library code decides whose words the message is.
    own = [f for f in frames if not (f[0] == "file" and _is_library_file(f[1]))]
    raiser = own[-1] if own else None
    grader = raiser is None or (raiser[0] == "cell" and raiser[1] in test_counts) or (
        raiser[0] == "file" and _is_grader_file(raiser[1]))
    ename = error.ename if error.ename in _BUILTIN_ERRORS else "an exception"
    if grader and raiser is not None:
        text = f"{error.ename}: {error.evalue}".strip().split("\n", 1)[0].rstrip(": ")
        result["message"] = scrub(text[:MAX_MESSAGE] + ("..." if len(text) > MAX_MESSAGE else ""), secrets)
    elif raiser is None:
        # No frame at all: a cell timed out or the kernel died (nbclient's own words, in
        # the traceback); anything else without frames is named by type only.
        said = _ANSI.sub("", (error.get("traceback") or [""])[-1]).split("\n", 1)[0]
        result["message"] = (scrub(said[:MAX_MESSAGE], secrets) if error.ename in cells.KERNEL_ERRORS
                             else f"{ename} (no traceback)")
    else:
        place = (f"notebook cell {cell_numbers[raiser[1]]}, line {raiser[2]}"
                 if raiser[0] == "cell" and raiser[1] in cell_numbers else "a file your code imported")
        result["message"] = (f"your code raised {ename} ({place}); run the cell yourself to see its message")
    return result


# -- the page ---------------------------------------------------------------------------------

def _grades(db_url: str, assignment: str, student: str, notebook: str):
    """grade id -> nbgrader Grade fields, and grade id -> the gradebook's copy of the cell."""
    with open_gradebook(db_url) as gb:
        nb = gb.find_submission_notebook(notebook, assignment, student)
        grades = {g.name: {"score": g.score, "max": g.max_score, "pending": bool(g.needs_manual_grade),
                           "extra": g.extra_credit or 0.0}
                  for g in nb.grades}
        for comment in nb.comments:  # what a grader wrote in the formgrader (or nbgrader's auto comment)
            if comment.name in grades:
                grades[comment.name]["comment"] = (comment.manual_comment or "").strip()
        sources = {c.name: {"source": c.source, "locked": c.locked, "type": c.cell_type}
                   for c in nb.notebook.source_cells}
        answers = {c.name for c in nb.notebook.solution_cells}
        tests = {c.name for c in nb.notebook.grade_cells} - answers
    return grades, sources, answers, tests


def _number(value: float) -> str:
    return f"{value:g}"


def plotly_html(figure: dict) -> str:
    import plotly.io as pio

    return pio.to_html(figure, include_plotlyjs=False, full_html=False, validate=False,
                       config={"displaylogo": False})


def _offline_outputs(cell, flags: dict) -> None:
    """Plotly figures become HTML drawn by the page's inlined plotly.js; outputs that only a
    live kernel or a CDN could show keep their text."""
    for output in cell.get("outputs", []):
        data = output.get("data")
        if not data:
            continue
        if PLOTLY in data:
            output.data = {"text/html": plotly_html(data[PLOTLY])}
            flags["plotly"] = True
        for kind in LIVE_ONLY:
            data.pop(kind, None)


def review_note(standing) -> dict:
    """What the page says of a grade in review (course/review.py): held, it shows no points at
    all (a flagged run's verdicts may be inflated); set by a person, the totals and why, without
    the run's per-cell verdicts (the points are the person's, not the cells')."""
    if standing is None:
        return {}
    if standing.held:
        return {"held": True, "plain": True,
                "note": "This grade is under review: a person checks this submission before its points count. "
                        "Your notebook is shown as you handed it in; the points will follow the review."}
    decision = standing.decision
    if decision and decision["event"] == "set":
        bonus = f" and +{decision['bonus']:g} bonus" if decision.get("bonus") else ""
        said = f": {decision['reason']}" if decision.get("reason") else ""
        return {"plain": True, "note": f"After review, your autograded points were set to {decision['points']:g}"
                                       f"{bonus}{said}"}
    return {}


def build_page(graded, submitted, grades: dict, sources: dict, answers: set, tests: set,
               secrets: set[str], reviewed: dict | None = None) -> tuple[list, dict]:
    """The cells of the feedback page and the summary shown on top of it; ``reviewed``: what
    ``review_note`` says (a held grade shows no points, a set one no per-cell verdicts)."""
    reviewed = reviewed or {}
    counts = {str(c.get("execution_count")): i for i, c in enumerate(graded.cells, start=1)
              if c.cell_type == "code" and c.get("execution_count") is not None}
    graded_by_id = {cells.grade_id(c): c for c in graded.cells if cells.grade_id(c)}
    test_counts = {str(c.get("execution_count")) for gid, c in graded_by_id.items()
                   if gid in tests or (gid in sources and sources[gid]["locked"] and gid not in answers)}
    flags = {"plotly": False}
    page_cells, rows = [], []
    for cell in submitted.cells:
        if cells.rubric_of(cell):
            continue  # graders' eyes only (course/rubric.py); never in a submission anyway
        if COLAB_MARKER in cell.metadata:
            continue  # the Colab badge (an image from the web) and setup cell mean nothing here
        gid = cells.grade_id(cell)
        if gid in sources and sources[gid]["locked"]:
            cell.source = visible_source(sources[gid]["source"])  # what the release shows
        if gid in grades and not (reviewed.get("plain") and gid in tests):
            grade = grades[gid]
            info = {"grade_id": gid, "max": _number(grade["max"])}
            if gid in tests:
                cell.outputs = []  # the graded run's verdict replaces the student's own run
                cell.execution_count = None
                bonus = grade["max"] == 0
                passed = (grade["extra"] > 0) if bonus else grade["score"] >= grade["max"]
                why = {"where": "", "message": ""} if passed or gid not in graded_by_id else verdict(
                    graded_by_id[gid], test_counts, counts, secrets)
                if not passed and gid in graded_by_id:  # written by the recording, never by the submission
                    why["causes"] = helper_module("causes").describe(cells.likely_causes(graded_by_id[gid]))
                info.update(kind="bonus" if bonus else "test", status=(Verdict.PASSED if passed else Verdict.FAILED).value, **why)
                if bonus:
                    info["points"] = f"+{_number(grade['extra'])} bonus" if passed else "no bonus"
                else:
                    info["points"] = f"{_number(grade['score'])} / {info['max']}"
            else:
                info.update(kind="answer", status=(Verdict.PENDING if grade["pending"] else Verdict.GRADED).value)
                info["points"] = (f"pending / {info['max']}" if grade["pending"]
                                  else f"{_number(grade['score'])} / {info['max']}")
                if not grade["pending"] and grade.get("comment"):
                    info["comment"] = grade["comment"]  # the grader's words to the student
            info["title"] = _title(info, cell.source)
            cell.metadata["course_feedback"] = info
            rows.append(info)
        _offline_outputs(cell, flags)
        page_cells.append(cell)
    totals = {} if reviewed.get("held") else _totals(grades, answers, tests)
    return page_cells, {"rows": rows, "plotly": flags["plotly"], **totals, "held": bool(reviewed.get("held")),
                        "review_note": reviewed.get("note", "")}


def _title(info: dict, source: str) -> str:
    first = source.strip().split("\n", 1)[0].lstrip("#").strip() if source.strip() else info["grade_id"]
    if info["kind"] == "answer":
        return f"Written answer {info['grade_id']}"
    return first[:80] or info["grade_id"]


def _totals(grades: dict, answers: set, tests: set) -> dict:
    auto = [g for gid, g in grades.items() if gid in tests]
    manual = [g for gid, g in grades.items() if gid in answers]
    pending = [g for g in manual if g["pending"]]
    graded = [g for g in manual if not g["pending"]]
    if not manual:
        written = ""
    elif not graded:
        written = f"written answers ({_number(sum(g['max'] for g in manual))} points): pending, a person grades them"
    else:
        written = (f"written answers: {_number(sum(g['score'] - g['extra'] for g in graded))} / "
                   f"{_number(sum(g['max'] for g in graded))}")
        if pending:
            written += f", {_number(sum(g['max'] for g in pending))} more points pending"
    return {
        "written": written,
        "auto_score": _number(sum(g["score"] - g["extra"] for g in auto)),
        "auto_max": _number(sum(g["max"] for g in auto)),
        "bonus": _number(sum(g["extra"] for g in grades.values())),
        "manual_score": _number(sum(g["score"] - g["extra"] for g in manual if not g["pending"])),
        "manual_max": _number(sum(g["max"] for g in manual)),
        "pending_max": _number(sum(g["max"] for g in pending)),
    }


class BuildFeedbackPage(NbGraderPreprocessor):
    """Replace the autograded notebook by the feedback page's cells (see the module docstring)."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        grades, sources, answers, tests = _grades(info["db_url"], info["assignment"], info["student"],
                                                  info["notebook"])
        secrets = hidden_lines([s["source"] for s in sources.values()])
        standing = resources.get("course_review") or review.standing(info["student"], info["assignment"])
        submitted = _read_submitted(info["student"], info["assignment"], info["notebook"])
        if submitted is None:  # the submission went away since grading: the student's cells, no outputs
            submitted = nbformat.from_dict(nb)
            for cell in submitted.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
        page_cells, summary = build_page(nb, submitted, grades, sources, answers, tests, secrets,
                                         review_note(standing))
        if standing.receipt:  # what the grade was computed from (course/receipts.py), in short
            summary["receipt"] = receipts.short(standing.receipt)
            summary["variant"] = standing.receipt.get("variant", "")  # the submitting student's (course/variants.py)
        nb.cells = page_cells
        if summary["plotly"]:
            from plotly.offline import get_plotlyjs

            summary["plotly_js"] = get_plotlyjs()  # inlined by the template: no CDN
        resources["course_feedback"] = summary
        return nb, resources


def _read_submitted(student: str, assignment: str, notebook: str):
    path = SUBMITTED / student / assignment / f"{notebook}.ipynb"
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError, MissingEntry):
        return None



@cache
def _exporter():
    """One exporter per process: loading its templates costs more than rendering a page."""
    from ..nbgrader_cli import nbgrader_config
    from .feedback_page import FeedbackExporter

    return FeedbackExporter(config=nbgrader_config())


def warm_up(assignment: str, layout: Layout = LAYOUT) -> None:
    """Render the assignment's released notebooks once, and throw the pages away: the
    templates compile, and the exporter remembers the highlighted code and converted markdown
    every student's page shares (course/plugins/feedback_page.py). ``course grade`` does it
    while the first submission runs, so that its page is not the one to pay for them."""
    for path in sorted((layout.release / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nb.cells = [cell for cell in nb.cells if COLAB_MARKER not in cell.metadata]
        nb.metadata["language_info"] = GRADED_LANGUAGE  # the code is highlighted as on the pages
        _render(nb, {"metadata": {"name": path.stem, "path": str(path.parent)},
                     "course_feedback": {"rows": [], "plotly": False, "held": False, "review_note": ""}})


def _render(nb, resources: dict) -> str:
    """A page's HTML: the notebook's styles, then the course's exporter (``write_pages``, and
    ``warm_up`` with the same steps)."""
    from jupyter_core.paths import jupyter_config_dir
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    from ..nbgrader_cli import nbgrader_config

    resources = {**resources, "config_dir": jupyter_config_dir()}
    nb, resources = CSSHTMLHeaderPreprocessor(config=nbgrader_config()).preprocess(nb, resources)
    html, _ = _exporter().from_notebook_node(nb, copy.deepcopy(resources))
    return html


def write_pages(assignment: str, student: str, layout: Layout = LAYOUT) -> list[Path]:
    """Write the feedback pages of one recorded submission, from its autograded notebooks and
    the gradebook, into ``feedback/<student>/<assignment>/``; returns the pages written.

    The same steps as nbgrader's GenerateFeedback with the course's pipeline
    (nbgrader_config.py), without its copying of every other file of the autograded folder:
    students get the HTML pages only."""
    from ..files import write_atomic
    from ..nbgrader_cli import nbgrader_config

    folder = layout.pages(student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    standing = review.standing(student, assignment, layout)
    written = []
    for path in sorted(layout.graded(student, assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        resources = {"nbgrader": {"db_url": f"sqlite:///{layout.gradebook}", "assignment": assignment,
                                  "student": student, "notebook": path.stem},
                     "metadata": {"name": path.stem, "path": str(path.parent)}, "course_review": standing}
        nb, resources = BuildFeedbackPage(config=nbgrader_config()).preprocess(nb, resources)
        write_atomic(folder / f"{path.stem}.html", _render(nb, resources))
        written.append(folder / f"{path.stem}.html")
    for stale in folder.iterdir():  # pages of notebooks the submission no longer has, and any other file
        if stale.is_file() and stale not in written:
            os.unlink(stale)
    return written
