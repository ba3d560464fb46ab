"""The wall-clock limit of one submission, end to end: a slow submission keeps the scores of
what ran in time, the one graded next to it is untouched.

Uses the one-notebook course of tests/test_grading_edge_cases.py with a short wall-clock
limit in course.toml; the cell timeout stays the course's (120 s), so only the wall-clock
limit can stop the slow cell.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import copy_course, run_course
from test_grading_edge_cases import mini_notebook, scores, submission

pytestmark = pytest.mark.xdist_group("grade-limits")
WALL_S = 45


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("limits"), parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    toml = (root / "course.toml").read_text()
    (root / "course.toml").write_text(re.sub(r"(?m)^wall_s = \d+", f"wall_s = {WALL_S}", toml))
    (root / "source" / "mini").mkdir(parents=True)
    nbformat.write(mini_notebook(), root / "source" / "mini" / "mini.ipynb")
    run_course(root, "release", "mini")
    released = nbformat.read(root / "release" / "mini" / "mini.ipynb", as_version=4)
    students = {"good": {}, "slow": {"helper": "import time\ntime.sleep(300)\ndef helper():\n    return 1"}}
    for student, replaced in students.items():
        folder = root / "submitted" / student / "mini"
        folder.mkdir(parents=True)
        nbformat.write(submission(released, replaced), folder / "mini.ipynb")
    return root, run_course(root, "grade", "mini", "--workers", "2", timeout=600).stdout


def test_a_submission_past_the_wall_clock_limit_keeps_what_ran_in_time(graded):
    root, output = graded
    line = next(l for l in output.splitlines() if l.strip().startswith("slow"))
    assert re.search(r"slow\s+limit hit", line), line
    assert f"wall-clock limit of {WALL_S} s reached" in line and "'test_helper' and the cells after it" in line, line
    # test_value and test_warns ran before the slow cell; the cells after it did not run
    assert scores(root, "slow") == {"test_value": 2, "test_warns": 1, "test_helper": 0, "test_bonus": 0}


def test_the_submission_graded_next_to_it_is_untouched(graded):
    root, output = graded
    assert re.search(r"good\s+graded", output), output
    assert scores(root, "good") == {"test_value": 2, "test_warns": 1, "test_helper": 1, "test_bonus": 2}
