"""``course report [ASSIGNMENT ...]``: the course dashboard, for instructors.

For each assignment (default: every assignment with a graded submission) it writes

* ``reports/<assignment>.html``: one self-contained page (plotly.js inlined, opens offline):
  the score distribution (autograded, written, bonus; late and held submissions), each
  graded cell (points lost, share failing, where it failed, likely causes, discrimination),
  the written answers (graded, pending, mean), and the grading health (statuses, the slowest
  submissions, kernel deaths);
* ``reports/<assignment>-cells.csv``: the per-cell numbers of the page, one row per graded cell;

and ``reports/index.html``, linking every assignment's page, with the hardest exercises of
the course. It reads the gradebook, the graded notebooks and the grading log only
(course/commands/report_data.py); it runs nothing and changes no grade. The pages are for
instructors: they name students, never show a hidden test, an expected value, or anything
a student's code printed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..config import LAYOUT, CourseError, Layout
from ..files import write_atomic
from ..gradebook import submissions
from . import report_data
from .report_data import Where
from .report_page import assignment_page, index_page
from .report_stats import answer_rows, cell_rows, hardest

INDEX = "index.html"
CSV_COLUMNS = ["assignment", "notebook", "cell", "kind", "title", "points", "submissions", "failed", "failed_share",
               "points_lost", "mean_points", *(f"failed_{w.replace(' ', '_')}" for w in Where.ALL),
               "likely_causes", "discrimination", "graded", "pending"]


@dataclass(frozen=True)
class Written:
    pages: dict[str, Path]  # assignment -> its page
    tables: dict[str, Path]  # assignment -> its CSV
    index: Path


def folder(layout: Layout = LAYOUT) -> Path:
    return layout.reports


def run(names: list[str] | None = None, layout: Layout = LAYOUT) -> Written:
    """Write the pages of ``names`` (default: every assignment with a graded submission), their
    CSVs and the index."""
    scores = submissions(layout.gradebook)
    if not scores:
        raise CourseError("the gradebook holds no graded submission: run `python -m course grade` first")
    graded = sorted({s.assignment for s in scores})
    names = names or graded
    out = folder(layout)
    out.mkdir(exist_ok=True)
    pages, tables, course = {}, {}, {}
    for name in names:
        data = report_data.load(name, layout, scores)
        course[name] = data
        tables[name] = out / f"{name}-cells.csv"
        write_atomic(tables[name], cells_csv(data))
        pages[name] = out / f"{name}.html"
        write_atomic(pages[name], assignment_page(data, tables[name].name))
    for name in graded:  # the index needs the others' scores only, not their notebooks
        course.setdefault(name, report_data.load(name, layout, scores, notebooks=False))
    linked = {name: f"{name}.html" for name in graded if (out / f"{name}.html").exists()}
    ranked = hardest([row for name in graded for row in cell_rows(course[name])])
    index = out / INDEX
    write_atomic(index, index_page([course[n] for n in graded], linked, ranked))
    return Written(pages, tables, index)


def cells_csv(data: report_data.ClassData) -> str:
    """The per-cell numbers of one assignment, as CSV text (autograded cells, then written answers)."""
    handle = io.StringIO()
    writer = csv.DictWriter(handle, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in cell_rows(data):
        writer.writerow({
            **_common(data.assignment, r.cell), "submissions": r.submissions, "failed": r.failed,
            "failed_share": f"{r.fail_share:.4f}", "points_lost": f"{r.points_lost:g}",
            "mean_points": f"{r.mean_points:.4f}",
            **{f"failed_{w.replace(' ', '_')}": r.where.get(w, "") for w in Where.ALL},
            "likely_causes": "; ".join(f"{cause}: {n}" for cause, n in r.causes),
            "discrimination": "" if r.discrimination is None else f"{r.discrimination:.4f}"})
    for a in answer_rows(data):
        writer.writerow({**_common(data.assignment, a.cell), "submissions": a.graded + a.pending,
                         "mean_points": "" if a.mean is None else f"{a.mean:.4f}", "graded": a.graded,
                         "pending": a.pending})
    return handle.getvalue()


def _common(assignment: str, cell: report_data.Cell) -> dict:
    return {"assignment": assignment, "notebook": cell.notebook, "cell": cell.grade_id, "kind": cell.kind,
            "title": cell.title, "points": f"{cell.points:g}"}


def summary(written: Written, layout: Layout = LAYOUT) -> str:
    lines = [f"{name}: dashboard {path.relative_to(layout.root)} (cells: {written.tables[name].relative_to(layout.root)})"
             for name, path in written.pages.items()]
    return "\n".join(lines + [f"all assignments: {written.index.relative_to(layout.root)}"])
