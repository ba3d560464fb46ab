"""The cells the course adds to every release notebook: the "Open in Colab" badge, the
Colab setup cell (first), the student-id cell after it where the assignment has per-student
variants (utils/variant.py), and the hand-in section (last).

Both are generated while nbgrader builds release/ (the AddColabCells
preprocessor below is part of GenerateAssignment's pipeline in
nbgrader_config.py), from the repository and branch in course.toml.
"""

from __future__ import annotations

import json

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from utils.variant import DEFAULTS

from ..config import Settings, settings

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

# Tag in the cell metadata, so tools can find (and tests can check) these cells.
MARKER = "course_cell"

# Short on purpose: the work after the clone is utils/colab_setup.py, which is tested there.
# The first line is Colab's form title: with cellView "form" Colab shows only that line.
SETUP_TEMPLATE = '''\
# @title Setup: run this cell first (on Colab it fetches the course files; elsewhere it does nothing)
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    if not os.path.isdir("course-pack"):
        clone = subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", {branch},
                                {url}, "course-pack"], capture_output=True, text=True)
        if clone.returncode != 0:
            raise RuntimeError("Could not download the course files (git said: " + " ".join(clone.stderr.split())
                               + "). Check that this session is online, then choose "
                               "Runtime → Restart session and run all.") from None
    sys.path.insert(0, os.path.abspath("course-pack"))
    from utils.colab_setup import setup
    setup({assignment}, {packages})
'''

# The cell right after the setup: the student's id, from which the numbers of their own
# exercises come (utils/variant.py). Only assignments with variants get it; release/ hands it
# out empty, and the source notebook's copy (which this replaces) holds an instructor's id.
# `# @param` makes it a text field on Colab; elsewhere it is a comment.
STUDENT_ID_TEMPLATE = '''\
# Your student id: type it between the quotes (as the course's roster has it), then run this cell.
# Some exercises use numbers of your own, computed from it; the grader uses the id you hand in under.
STUDENT_ID = {typed}  # @param {{type:"string"}}
from utils.variant import variant
VARIANT = variant({assignment}, STUDENT_ID)
print(VARIANT.describe())
'''
STUDENT_ID_CELL = "student-id"

HANDIN_TEXT = '''\
## Hand in

1. Run everything from a fresh start: on Colab *Runtime → Restart session and run all*, in
   JupyterLab *Kernel → Restart Kernel and Run All Cells…*. Every cell should run.
2. Run the cell below. It runs this notebook again from top to bottom in a fresh kernel, with its
   tests, tells you what is still wrong or missing, and gives you the file to hand in, named
   `{notebook}.ipynb` as the grader expects: on Colab your browser downloads it; in JupyterLab
   (save first) it is `hand-in/{notebook}.ipynb` next to this notebook. From a terminal:
   `python -m utils.handin {notebook}.ipynb`.
3. Upload `{notebook}.ipynb` to the assignment on the course's learning platform.
'''

# Does nothing while nbgrader grades or validates the notebook, or the hand-in check runs it:
# not even an import, so grading pays nothing for it.
HANDIN_CODE = '''\
# @title Hand in: check this notebook and get the file to submit
import os
if not (os.environ.get("NBGRADER_EXECUTION") or os.environ.get("COURSE_HANDIN_CHECK")):
    from utils.handin import hand_in
    hand_in({notebook})
'''


def colab_url(assignment: str, notebook: str, cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    path = f"release/{assignment}/{notebook}.ipynb"
    return f"https://colab.research.google.com/github/{cfg.repository}/blob/{cfg.branch}/{path}"


def badge_cell(assignment: str, notebook: str, cfg: Settings | None = None) -> nbformat.NotebookNode:
    source = f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(assignment, notebook, cfg)})"
    cell = nbformat.v4.new_markdown_cell(source, id="colab-badge")
    cell.metadata[MARKER] = "colab-badge"
    return cell


def setup_source(assignment: str, cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    values = dict(branch=cfg.branch, url=cfg.repository_url, assignment=assignment, packages=cfg.colab_packages)
    # JSON literals of strings and string dicts are valid Python, with the usual double quotes.
    return SETUP_TEMPLATE.format(**{key: json.dumps(value) for key, value in values.items()})


def student_id_cell(assignment: str, typed: str = "") -> nbformat.NotebookNode:
    """The id cell (STUDENT_ID_TEMPLATE); ``typed``: the id it holds (empty in release/)."""
    source = STUDENT_ID_TEMPLATE.format(typed=json.dumps(typed), assignment=json.dumps(assignment))
    cell = nbformat.v4.new_code_cell(source, id=STUDENT_ID_CELL)
    cell.metadata[MARKER] = STUDENT_ID_CELL
    return cell


def _collapsed(cell: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cell.metadata[MARKER] = tag
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    cell.metadata["cellView"] = "form"  # Colab: show the "# @title" line only
    cell.metadata["jupyter"] = {"source_hidden": True}  # JupyterLab: source collapsed
    return cell


def setup_cell(assignment: str, cfg: Settings | None = None) -> nbformat.NotebookNode:
    return _collapsed(nbformat.v4.new_code_cell(setup_source(assignment, cfg), id="colab-setup"), "colab-setup")


def handin_cells(notebook: str) -> list[nbformat.NotebookNode]:
    """The closing section of every student notebook: how to check and hand in, and the cell that does it."""
    text = nbformat.v4.new_markdown_cell(HANDIN_TEXT.format(notebook=notebook), id="hand-in-text")
    text.metadata[MARKER] = "hand-in-text"
    code = nbformat.v4.new_code_cell(HANDIN_CODE.format(notebook=json.dumps(notebook)), id="hand-in")
    return [text, _collapsed(code, "hand-in")]


class AddColabCells(NbGraderPreprocessor):
    """Put the Colab badge and the setup cell at the top of a generated notebook."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        assignment, notebook = info["assignment"], info["notebook"]
        nb.cells = [c for c in nb.cells if MARKER not in c.metadata]  # idempotent
        top = [badge_cell(assignment, notebook), setup_cell(assignment)]
        if assignment in DEFAULTS:  # an assignment with variants: its students type their id
            top.append(student_id_cell(assignment))
        nb.cells[:0] = top
        nb.cells += handin_cells(notebook)
        # Which assignment and notebook this is, for the hand-in check of a renamed copy.
        nb.metadata["course"] = {"assignment": assignment, "notebook": notebook}
        return nb, resources
