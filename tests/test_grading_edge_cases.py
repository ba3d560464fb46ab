"""Grading submissions that loop, crash, warn, tamper or claim points, on a one-notebook course.

A tiny assignment keeps these cases fast; it is graded by the same pipeline and the same
nbgrader_config.py as the real course, with a short cell timeout.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import copy_course, run_course

from course.grading import digest

pytestmark = pytest.mark.xdist_group("grade-mini")


def _meta(grade_id, grade, solution, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _cell(grade_id, source, grade=False, solution=False, points=None, **extra):
    cell = nbformat.v4.new_code_cell(source, id=grade_id)
    cell.metadata.update(_meta(grade_id, grade, solution, points), **extra)
    return cell


SOLUTIONS = {"answer": "value = 42", "helper": "def helper():\n    return 1"}


def mini_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("import os, sys, warnings", id="imports"),
        _cell("answer", "### BEGIN SOLUTION\nvalue = 42\n### END SOLUTION", solution=True),
        _cell("test_value", 'assert value > 0, "value should be positive"\n'
                            '### BEGIN HIDDEN TESTS\nassert value * 2 == 84, "value is not right"\n'
                            "### END HIDDEN TESTS", grade=True, points=2),
        _cell("test_warns", 'warnings.warn("a harmless warning", UserWarning)\nassert value > 0',
              grade=True, points=1),
        _cell("helper", "### BEGIN SOLUTION\ndef helper():\n    return 1\n### END SOLUTION", solution=True),
        _cell("test_helper", "assert helper() == 1", grade=True, points=1),
        _cell("test_bonus", "assert value == 42", grade=True, points=0, course={"bonus": 2}),
    ]
    return nb


# student -> (replaced solution cells, {test cell: expected score})
CASES = {
    "good": ({}, {"test_value": 2, "test_warns": 1, "test_helper": 1, "test_bonus": 2}),
    "loops": ({"helper": "while True:\n    pass"},
              {"test_value": 2, "test_warns": 1, "test_helper": 0, "test_bonus": 2}),
    "noisy": ({"helper": 'def helper():\n    print("debug", file=sys.stderr)\n    return 1'},
              {"test_value": 2, "test_warns": 1, "test_helper": 0, "test_bonus": 2}),
    "wrong": ({"answer": "value = 41"}, {"test_value": 0, "test_warns": 1, "test_helper": 1, "test_bonus": 0}),
}


def submission(release_nb, replaced, claim_bonus=False):
    nb = nbformat.from_dict(release_nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in SOLUTIONS:
            cell.source = replaced.get(grade_id, SOLUTIONS[grade_id])
        if claim_bonus and grade_id == "test_value":
            cell.metadata["course"] = {"bonus": 5}  # editing metadata must not earn anything
    return nb


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("mini"), parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    with open(root / "nbgrader_config.py", "a") as config:
        config.write("\nc.Execute.timeout = 5\n")
    (root / "source" / "mini").mkdir(parents=True)
    nbformat.write(mini_notebook(), root / "source" / "mini" / "mini.ipynb")
    run_course(root, "release", "mini")
    released = nbformat.read(root / "release" / "mini" / "mini.ipynb", as_version=4)

    def submit(student, nb):
        folder = root / "submitted" / student / "mini"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "mini.ipynb")

    for student, (replaced, _) in CASES.items():
        submit(student, submission(released, replaced, claim_bonus=student == "wrong"))
    submit("crashes", submission(released, {"answer": "os._exit(1)"}))
    submit("tampers", submission(released, {
        "helper": "open('../../../submitted/tampers/mini/mini.ipynb', 'a').write(' ')\n" + SOLUTIONS["helper"]}))
    hashes = {s.name: digest([s]) for s in (root / "submitted").iterdir()}
    output = run_course(root, "grade", "mini", timeout=600).stdout
    return root, output, hashes


def scores(root, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "pytorch-course-pack") as gb:
        sub = gb.find_submission("mini", student)
        return {g.name: g.score for nb in sub.notebooks for g in nb.grades}


@pytest.mark.parametrize("student", CASES)
def test_cell_scores(mini, student):
    root, output, _ = mini
    assert re.search(rf"{student}\s+graded", output), output
    assert scores(root, student) == CASES[student][1]


def test_an_endless_loop_is_stopped_by_the_cell_timeout(mini):
    root = mini[0]
    graded = nbformat.read(root / "autograded" / "loops" / "mini" / "mini.ipynb", as_version=4)
    helper = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "helper")
    assert any(o.output_type == "error" for o in helper.outputs)


def test_a_crashing_kernel_scores_zero_without_stopping_the_others(mini):
    root, output, _ = mini
    line = next(l for l in output.splitlines() if l.strip().startswith("crashes"))
    if "error" in line:  # nbgrader gave up on the notebook: the reason is shown
        assert "nbgrader could not grade it" in line and len(line) > 60
    else:
        assert sum(scores(root, "crashes").values()) == 0
    assert scores(root, "good")["test_value"] == 2


def test_a_submission_changed_during_grading_is_reported(mini):
    _, output, _ = mini
    line = next(l for l in output.splitlines() if l.strip().startswith("tampers"))
    assert "the submission changed while it was graded" in line


def test_other_submissions_are_untouched(mini):
    root, _, hashes = mini
    for student, before in hashes.items():
        if student != "tampers":
            assert digest([root / "submitted" / student]) == before


def test_feedback_withholds_hidden_tests_but_shows_their_message(mini):
    root = mini[0]
    page = (root / "feedback" / "wrong" / "mini" / "mini.html").read_text()
    assert "value * 2 == 84" not in page and "HIDDEN TESTS" not in page
    assert "value is not right" in page
    assert "value should be positive" in page  # visible test code is shown
