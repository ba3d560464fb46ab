"""Course settings and nbgrader settings behave as the course needs."""

import re
import textwrap

import nbformat
import pytest
from conftest import ROOT
from nbgrader.preprocessors import IgnorePattern
from traitlets.config.loader import PyFileConfigLoader

from course.config import CourseError, settings


@pytest.fixture(scope="module")
def nbgrader_config():
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def test_timeout_leaves_room_for_the_heaviest_cell_and_has_one_home(nbgrader_config):
    # benchmarks/bench_grading.py measures the heaviest cell: a few seconds on 2 cores.
    assert 60 <= settings().grading.limits.cell_s <= 600
    assert nbgrader_config.Execute.timeout == settings().grading.limits.cell_s  # nbgrader's own run agrees


def _stderr_cell(text):
    cell = nbformat.v4.new_code_cell("pass")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=text)]
    return cell


@pytest.mark.parametrize("text, dropped", [
    ("/x/y.py:3: UserWarning: Converting a tensor with requires_grad=True to a scalar\n"
     "Consider using tensor.detach() first.\n  print(x)\n", True),
    ("/lib.py:10: DeprecationWarning: old api\n  warnings.warn('old')\n", True),
    ("a.py:1: FutureWarning: soon\n", True),
    ("Traceback (most recent call last):\nValueError: bad\n", False),
    ("epochs:  40%|####      | 4/10\n", False),
    ("my debug print\n/x.py:1: UserWarning: late warning\n", False),
])
def test_only_warnings_are_dropped_from_stderr(nbgrader_config, text, dropped):
    pre = IgnorePattern(config=nbgrader_config)
    assert pre.enabled
    cell, _ = pre.preprocess_cell(_stderr_cell(text), {}, 0)
    assert (cell.outputs == []) is dropped


def test_pipelines_include_the_course_steps(nbgrader_config):
    names = lambda classes: [c.__name__ for c in classes]  # noqa: E731
    assert names(nbgrader_config.GenerateAssignment.preprocessors)[-1] == "AddColabCells"
    assert "ClearHiddenTests" in names(nbgrader_config.GenerateAssignment.preprocessors)
    feedback = names(nbgrader_config.GenerateFeedback.preprocessors)
    assert feedback.index("GetGrades") < feedback.index("BuildFeedbackPage")
    autograde = names(nbgrader_config.Autograde.autograde_preprocessors)
    assert autograde.index("SaveAutoGrades") < autograde.index("AwardBonusPoints")


def test_course_settings_are_read_from_course_toml():
    cfg = settings()
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", cfg.repository)
    assert cfg.repository_url == f"https://github.com/{cfg.repository}.git"
    assert cfg.branch


@pytest.mark.parametrize("content, message", [
    (None, "course settings not found"),
    ("[course\nid=1", "not valid TOML"),
    ("[course]\nid = 'x'\n", "lacks the setting 'colab'"),
])
def test_bad_course_settings_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "course.toml"
    if content is not None:
        path.write_text(textwrap.dedent(content))
    with pytest.raises(CourseError, match=message):
        settings(path)
