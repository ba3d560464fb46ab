"""The hand-in helper's decisions that need no kernel (the full check runs in test_roundtrip
and, on simulated Colab, in test_publish)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from utils import handin


@pytest.mark.parametrize("filename", ["autodiff.ipynb", "Copy of autodiff.ipynb", "autodiff (1).ipynb",
                                      "autodiff-2.ipynb", "Kopie von autodiff.ipynb"])
def test_expected_name_undoes_what_browsers_and_colab_do(filename):
    assert handin.expected_name(nbformat.v4.new_notebook(), Path(filename)) == "autodiff.ipynb"


def test_expected_name_prefers_the_notebooks_own_record():
    nb = nbformat.v4.new_notebook(metadata={"course": {"assignment": "a", "notebook": "optimizers"}})
    assert handin.expected_name(nb, Path("my homework.ipynb")) == "optimizers.ipynb"


def test_unanswered_cells_are_found_by_their_stubs():
    def cell(kind, source, grade_id):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        c = make(source)
        c.metadata["nbgrader"] = {"solution": True, "grade": kind == "markdown", "grade_id": grade_id}
        return c

    nb = nbformat.v4.new_notebook(cells=[
        cell("code", "# YOUR CODE HERE\nraise NotImplementedError()", "todo"),
        cell("code", "x = 1", "done"),
        cell("markdown", "YOUR ANSWER HERE", "empty_answer"),
        cell("markdown", "Because the step is too large.", "answered"),
        nbformat.v4.new_code_cell("raise NotImplementedError()"),  # not an answer cell
    ])
    assert handin.unanswered(nb) == {0: ("code", "todo"), 2: ("written", "empty_answer")}


@pytest.mark.parametrize("variable", ["NBGRADER_EXECUTION", handin.SKIP_ENV])
def test_hand_in_does_nothing_while_graded_or_checked(monkeypatch, capsys, variable):
    monkeypatch.setenv(variable, "autograde")
    assert handin.hand_in("autodiff") is None
    assert capsys.readouterr().out == ""


def test_hand_in_outside_jupyter_says_what_to_run(monkeypatch, capsys):
    for name in ("NBGRADER_EXECUTION", handin.SKIP_ENV, "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert handin.hand_in("autodiff") is None
    assert "python -m utils.handin autodiff.ipynb" in capsys.readouterr().out


def test_an_unreadable_notebook_is_explained(tmp_path):
    broken = tmp_path / "autodiff.ipynb"
    broken.write_text('{"cells": [')
    with pytest.raises(SystemExit, match="not a readable notebook"):
        handin.check(broken)
    assert broken.read_text() == '{"cells": [' and not (tmp_path / "hand-in").exists()
