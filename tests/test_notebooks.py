"""Execute every notebook: instructor versions pass all their tests, student versions fail all.

The notebooks run in a temporary copy of their folder (with the data files), as the
instructor or a student would run them, so the repository is never written to.
"""

from __future__ import annotations

import ast
import shutil

import nbformat
import pytest
from conftest import ROOT, course_env
from nbclient import NotebookClient

from course import cells as nbcells
from course import config
from course.plugins import bonus

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
    # Demonstration runs shortened, as when grading (utils/quick.py): these tests judge the test
    # cells; benchmarks/bench_grading.py runs the notebooks at full length.
    monkeypatch.setenv("COURSE_QUICK", "1")
    nb = nbformat.read(work / notebook.name, as_version=4)
    # The kernel is killed after the last cell, as grading does: a graceful shutdown with
    # torch loaded takes 1.4 to 2.4 s and shows nothing these tests read.
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True, shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(work)}}).execute()
    return nb


def errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]


def stderr(cell) -> str:
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_instructor_notebook_runs_and_passes_all_tests(notebook, tmp_path, monkeypatch):
    nb = execute(notebook, tmp_path, monkeypatch)
    failures = {nbcells.name(c): errors(c) for c in nb.cells if errors(c)}
    assert not failures, f"cells raised: {failures}"
    noisy = {nbcells.grade_id(c): stderr(c)[:300] for c in nb.cells if nbcells.is_test(c) and stderr(c)}
    assert not noisy, f"test cells wrote to stderr (nbgrader would score them 0): {noisy}"
    assert sum(1 for c in nb.cells if nbcells.is_test(c)) >= 5


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_student_version_fails_every_autograded_test(notebook, tmp_path, monkeypatch):
    released = ROOT / "release" / notebook.parent.name / notebook.name
    nb = execute(released.relative_to(ROOT), tmp_path, monkeypatch)
    tests = [c for c in nb.cells if nbcells.is_test(c)]
    assert tests
    passing = [nbcells.grade_id(c) for c in tests if not errors(c)]
    assert not passing, f"these tests pass on the untouched student version: {passing}"


def test_bonus_cells_are_worth_no_regular_points():
    for name in config.assignments():
        for path in (ROOT / "source" / name).glob("*.ipynb"):
            extra = bonus.bonus_points(path)
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                gid = nbcells.grade_id(cell)
                if gid in extra:
                    assert nbcells.points(cell) == 0, f"{path.name}: bonus cell {gid} must have 0 points"
                    assert extra[gid] > 0


def _helpers_returning_nothing() -> set[str]:
    """Names of the helper checks annotated ``-> None``: a test cell may end with a call to one."""
    import inspect

    import utils.checks
    import utils.figures
    import utils.rosenbrock

    return {name for module in (utils.checks, utils.figures, utils.rosenbrock)
            for name, func in vars(module).items()
            if inspect.isfunction(func) and inspect.signature(func).return_annotation in (None, "None")}


RETURN_NOTHING = _helpers_returning_nothing() | {"print", "show"}


def _ends_in_value(source: str) -> bool:
    body = ast.parse(source).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    value = body[-1].value
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return not (name in RETURN_NOTHING or name.startswith("test_"))
    return True


def test_test_cells_end_in_a_statement():
    # nbgrader (and the student's Validate button) reads a test cell whose last line is an
    # expression with a numeric value as partial credit, and one echoing a tensor as output.
    assert _ends_in_value("x = 1\ncheck_number(x, 'x')") and _ends_in_value("loss.item()")
    assert not _ends_in_value("check_close(a, b, 'a')\n") and not _ends_in_value("test_adam(Adam)")
    assert "check_close" in RETURN_NOTHING and "check_number" not in RETURN_NOTHING
    ending_in_value = []
    for name in config.assignments():
        for folder in ("source", "release"):
            for path in sorted((ROOT / folder / name).glob("*.ipynb")):
                for cell in nbformat.read(path, as_version=4).cells:
                    if not nbcells.is_test(cell):
                        continue
                    if _ends_in_value(cell.source):
                        ending_in_value.append(f"{folder}/{name}: {nbcells.grade_id(cell)}")
    assert not ending_in_value, f"test cells that end in an expression: {ending_in_value}"
