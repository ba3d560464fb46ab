"""Grading submissions that loop, crash, warn, tamper or claim points, on a one-notebook course.

A tiny assignment keeps these cases fast; it is graded by the same pipeline and the same
nbgrader_config.py as the real course, with a short cell timeout.
"""

from __future__ import annotations

import html
import re

import nbformat
import pytest
from conftest import copy_course, run_course

from course import cells as nbcells
from course.files import digest

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
    "peeks": ({"helper": 'print(*In, sep="\\n")\n' + SOLUTIONS["helper"]},
              {"test_value": 2, "test_warns": 1, "test_helper": 1, "test_bonus": 2}),
}


def submission(release_nb, replaced, claim_bonus=False):
    nb = nbformat.from_dict(release_nb)
    for cell in nb.cells:
        grade_id = nbcells.grade_id(cell)
        if grade_id in SOLUTIONS:
            cell.source = replaced.get(grade_id, SOLUTIONS[grade_id])
        if claim_bonus and grade_id == "test_value":
            cell.metadata["course"] = {"bonus": 5}  # editing metadata must not earn anything
    return nb


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("mini"), parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    settings = root / "course.toml"
    settings.write_text(re.sub(r"cell_s = \d+", "cell_s = 5", settings.read_text()))
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
    submit("tampers", submission(released, {
        "helper": "open('../../../submitted/tampers/mini/mini.ipynb', 'a').write(' ')\n" + SOLUTIONS["helper"]}))
    submit("crashes", submission(released, {"helper": "os._exit(1)"}))
    submit("stubborn", submission(released, {"helper": "import time\nwhile True:\n    try:\n        time.sleep(100)\n"
                                                       "    except KeyboardInterrupt:\n        pass"}))
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
    helper = next(c for c in graded.cells if nbcells.grade_id(c) == "helper")
    assert any(o.output_type == "error" for o in helper.outputs)


def test_a_crashing_kernel_keeps_the_scores_before_it_and_does_not_stop_the_others(mini):
    root, output, _ = mini
    line = next(l for l in output.splitlines() if l.strip().startswith("crashes"))
    assert "Kernel died in cell 'helper'" in line, line
    # The tests before the crash keep their points; test_helper fails (no helper), and the
    # bonus test fails because `value` died with the kernel.
    assert scores(root, "crashes") == {"test_value": 2, "test_warns": 1, "test_helper": 0, "test_bonus": 0}
    assert scores(root, "good")["test_value"] == 2


def test_a_loop_that_ignores_the_interrupt_keeps_the_scores_before_it(mini):
    """Past the cell timeout the kernel is interrupted; a cell that swallows the interrupt
    made nbclient give up on the whole notebook (every score zero) before course/engine/execute.py."""
    root, output, _ = mini
    line = next(l for l in output.splitlines() if l.strip().startswith("stubborn"))
    assert "cell 'helper' ran past the cell timeout and ignored the interrupt" in line, line
    assert scores(root, "stubborn") == {"test_value": 2, "test_warns": 1, "test_helper": 0, "test_bonus": 0}


def test_a_submission_cannot_write_to_its_own_submitted_file(mini):
    # In the sandbox the submission is a read-only copy and the original is not visible:
    # the write fails, so the cell that tried it fails honestly, and nothing changed.
    root, output, hashes = mini
    line = next(l for l in output.splitlines() if l.strip().startswith("tampers"))
    assert re.search(r"tampers\s+graded", line), line
    assert digest([root / "submitted" / "tampers"]) == hashes["tampers"]
    assert scores(root, "tampers") == {"test_value": 2, "test_warns": 1, "test_helper": 0, "test_bonus": 2}


def test_feedback_holds_pages_only(mini):
    root = mini[0]
    files = [p for p in (root / "feedback").rglob("*") if p.is_file()]
    assert files and all(p.suffix == ".html" for p in files), files


def test_hidden_code_printed_by_a_student_is_withheld(mini):
    root = mini[0]
    graded = (root / "autograded" / "peeks" / "mini" / "mini.ipynb").read_text()
    assert "value * 2 == 84" in graded  # the student's cell did print the hidden test...
    page = (root / "feedback" / "peeks" / "mini" / "mini.html").read_text()
    assert "value * 2 == 84" not in page  # ...but the feedback does not show it
    code = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "print(*In, sep=" in code  # it shows the student's own cell as submitted


def test_no_submission_is_modified(mini):
    root, _, hashes = mini
    for student, before in hashes.items():
        assert digest([root / "submitted" / student]) == before


def test_feedback_withholds_hidden_tests_but_shows_their_message(mini):
    root = mini[0]
    page = (root / "feedback" / "wrong" / "mini" / "mini.html").read_text()
    assert "value * 2 == 84" not in page and "HIDDEN TESTS" not in page
    assert "value is not right" in page
    assert "value should be positive" in page  # visible test code is shown


# Last: it changes a submission and the gradebook that the tests above look at.
def test_changed_inputs_are_graded_again_and_unchanged_ones_skipped(mini):
    root = mini[0]
    # The student fixes the answer: only this submission is graded again.
    path = root / "submitted" / "wrong" / "mini" / "mini.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if nbcells.grade_id(cell) == "answer":
            cell.source = "value = 42"
    nbformat.write(nb, path)
    out = run_course(root, "grade", "mini", "--student", "wrong", "--student", "good").stdout
    assert re.search(r"wrong\s+graded", out) and re.search(r"good\s+up to date", out), out
    assert scores(root, "wrong")["test_value"] == 2
    # Without the gradebook nothing counts as graded, whatever the stamps say.
    (root / "gradebook.db").rename(root / "gradebook.old")
    out = run_course(root, "grade", "mini", "--student", "good").stdout
    assert re.search(r"good\s+graded", out), out
    assert scores(root, "good")["test_value"] == 2
