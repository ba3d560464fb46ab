"""Execute every notebook: instructor versions pass all their tests, student versions fail all.

The notebooks run in a temporary copy of their folder (with the data files), as the
instructor or a student would run them, so the repository is never written to.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ROOT, course_env
from nbclient import NotebookClient

from course import bonus, config

NOTEBOOKS = [
    pytest.param(nb.relative_to(ROOT), marks=pytest.mark.xdist_group(f"nb-{nb.parent.name}"), id=nb.stem)
    for name in config.assignments()
    for nb in sorted((ROOT / "source" / name).glob("*.ipynb"))
]


def execute(notebook, tmp_path, monkeypatch):
    work = tmp_path / notebook.parent.name
    shutil.copytree(ROOT / notebook.parent, work)
    for key, value in course_env(ROOT).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(work / notebook.name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(work)}}).execute()
    return nb


def is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]


def stderr(cell) -> str:
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_instructor_notebook_runs_and_passes_all_tests(notebook, tmp_path, monkeypatch):
    nb = execute(notebook, tmp_path, monkeypatch)
    failures = {c.metadata.get("nbgrader", {}).get("grade_id", c.id): errors(c) for c in nb.cells if errors(c)}
    assert not failures, f"cells raised: {failures}"
    noisy = {c.metadata.nbgrader.grade_id: stderr(c)[:300] for c in nb.cells if is_test(c) and stderr(c)}
    assert not noisy, f"test cells wrote to stderr (nbgrader would score them 0): {noisy}"
    assert sum(1 for c in nb.cells if is_test(c)) >= 5


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_student_version_fails_every_autograded_test(notebook, tmp_path, monkeypatch):
    released = ROOT / "release" / notebook.parent.name / notebook.name
    nb = execute(released.relative_to(ROOT), tmp_path, monkeypatch)
    tests = [c for c in nb.cells if is_test(c)]
    assert tests
    passing = [c.metadata.nbgrader.grade_id for c in tests if not errors(c)]
    assert not passing, f"these tests pass on the untouched student version: {passing}"


def test_bonus_cells_are_worth_no_regular_points():
    for name in config.assignments():
        for path in (ROOT / "source" / name).glob("*.ipynb"):
            extra = bonus.bonus_points(path)
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("grade_id") in extra:
                    assert meta["points"] == 0, f"{path.name}: bonus cell {meta['grade_id']} must have 0 points"
                    assert extra[meta["grade_id"]] > 0
