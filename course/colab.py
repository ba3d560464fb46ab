"""The "Open in Colab" badge and the Colab setup cell of every release notebook.

Both are generated while nbgrader builds release/ (the AddColabCells
preprocessor below is part of GenerateAssignment's pipeline in
nbgrader_config.py), from the repository and branch in course.toml.
"""

from __future__ import annotations

import json

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from .config import Settings, settings

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

# Tag in the cell metadata, so tools can find (and tests can check) these cells.
MARKER = "course_cell"

SETUP_TEMPLATE = '''\
# Setup: on Colab this fetches the course helpers and this assignment's data.
# On your own machine it does nothing. Run it first.
import sys
if "google.colab" in sys.modules:
    import importlib.util, os, shutil, subprocess
    course_dir = os.path.abspath("course-pack")
    if not os.path.isdir(course_dir):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", {branch},
                        {url}, course_dir], check=True)
    if course_dir not in sys.path:
        sys.path.insert(0, course_dir)
    data_dir = os.path.join(course_dir, "release", {assignment})
    for name in os.listdir(data_dir):
        source, target = os.path.join(data_dir, name), os.path.join(os.getcwd(), name)
        if name.endswith(".ipynb") or os.path.exists(target):
            continue
        (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, target)
    missing = [pip_name for module, pip_name in {packages}.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
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


def setup_cell(assignment: str, cfg: Settings | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(setup_source(assignment, cfg), id="colab-setup")
    cell.metadata[MARKER] = "colab-setup"
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    return cell


class AddColabCells(NbGraderPreprocessor):
    """Put the Colab badge and the setup cell at the top of a generated notebook."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        assignment, notebook = info["assignment"], info["notebook"]
        nb.cells = [c for c in nb.cells if MARKER not in c.metadata]  # idempotent
        nb.cells[:0] = [badge_cell(assignment, notebook), setup_cell(assignment)]
        return nb, resources
