"""The course command gives clear errors for wrong input and never a traceback."""

import os
import re
import subprocess
import sys

import nbformat
import pytest
from conftest import copy_course, course_env, run_course

from course import config
from course.engine import prepare


def test_unknown_assignment(course_copy):
    proc = run_course(course_copy, "grade", "no_such_assignment", check=False)
    assert proc.returncode == 2
    assert "unknown assignment 'no_such_assignment'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_grading_a_student_without_submission(course_copy):
    name = config.assignments()[0]
    proc = run_course(course_copy, "grade", name, "--student", "ghost", check=False)
    assert proc.returncode == 2 and "no submission in submitted/ for: ghost" in proc.stderr


def test_samples_never_overwrite_a_real_submission(course_copy):
    name = config.assignments()[0]
    real = course_copy / "submitted" / "correct" / name / f"{name}.ipynb"
    real.parent.mkdir(parents=True)
    real.write_text("a real student's work")
    proc = run_course(course_copy, "samples", name, check=False)
    assert proc.returncode == 2 and "not a bundled sample" in proc.stderr
    assert real.read_text() == "a real student's work"


def test_samples_need_a_release(course_copy):
    import shutil

    name = config.assignments()[0]
    shutil.rmtree(course_copy / "release" / name)
    proc = run_course(course_copy, "samples", name, check=False)
    assert proc.returncode == 2 and "run `python -m course release` first" in proc.stderr


def test_samples_spec_naming_a_missing_cell_is_an_error(course_copy):
    name = config.assignments()[0]
    spec = course_copy / "samples" / name / "samples.toml"
    spec.write_text('[students.typo]\nfails = []\n[students.typo.cells]\nno_such_cell = "x = 1"\n')
    proc = run_course(course_copy, "samples", name, check=False)
    assert proc.returncode == 2 and "no_such_cell" in proc.stderr


def test_missing_course_settings(course_copy):
    (course_copy / "course.toml").unlink()
    proc = run_course(course_copy, "release", check=False)
    assert proc.returncode != 0 and "course settings not found" in proc.stdout + proc.stderr


@pytest.mark.parametrize("content, message", [
    (None, "holds no notebook"),
    ("{ not json", "not a valid notebook"),
    ('{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "not a valid notebook"),
    ("\udcff", "not a valid notebook"),
])
def test_check_notebooks_explains_what_is_wrong(tmp_path, content, message):
    folder = tmp_path / "submitted" / "s" / "a"
    folder.mkdir(parents=True)
    if content is not None:
        (folder / "a.ipynb").write_text(content, errors="surrogateescape")
    assert message in prepare.check_notebooks(folder)


def test_check_notebooks_accepts_a_valid_notebook(tmp_path):
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    assert prepare.check_notebooks(tmp_path) is None


def test_check_notebooks_reports_a_renamed_notebook(tmp_path):
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "Copy of autodiff.ipynb")
    message = prepare.check_notebooks(tmp_path, {"autodiff.ipynb"})
    assert "has Copy of autodiff.ipynb but not autodiff.ipynb: rename the notebook" in message
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "autodiff.ipynb")
    assert prepare.check_notebooks(tmp_path, {"autodiff.ipynb"}) is None


def test_feedback_stops_on_a_broken_nbgrader_config(course_copy):
    """Recording and feedback pages run nbgrader's steps in the grader's own process: a config
    that does not load must stop it with the cause, not fall back to nbgrader's defaults
    (which would show hidden tests)."""
    with open(course_copy / "nbgrader_config.py", "a") as config:
        config.write("\nc.GenerateFeedback.preprocessors = undefined_name\n")
    code = "from course.nbgrader_cli import nbgrader_config\nnbgrader_config()\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=course_copy, env=course_env(course_copy),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "nbgrader_config.py could not be loaded" in proc.stderr and "undefined_name" in proc.stderr


def test_the_demo_completes_without_a_sandbox_and_says_why(tmp_path):
    """Where bubblewrap cannot start (macOS, no user namespaces), the demo grades its own
    samples without the sandbox and says so in one line; real grading still refuses."""
    from test_grading_edge_cases import mini_notebook

    root = copy_course(tmp_path / "course", parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    (root / "source" / "mini").mkdir(parents=True)
    nbformat.write(mini_notebook(), root / "source" / "mini" / "mini.ipynb")
    (root / "samples" / "mini").mkdir(parents=True)
    (root / "samples" / "mini" / "samples.toml").write_text(
        '[students.correct]\nabout = "the solution"\n'
        '[students.wrong]\nabout = "a wrong value"\nfails = ["test_value", "test_bonus"]\n'
        'cells.answer = "value = 41"\n')
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n")
    (broken / "bwrap").chmod(0o755)
    env = {**course_env(root), "PATH": f"{broken}:{os.environ['PATH']}"}
    demo = subprocess.run([sys.executable, "-m", "course", "demo", "--workers", "1"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    notes = [line for line in demo.stdout.splitlines() if line.startswith("note: no sandbox here")]
    assert len(notes) == 1 and "could not start" in notes[0] and "grades its own sample submissions" in notes[0]
    assert re.search(r"correct\s+4/4 \+2 bonus", demo.stdout) and re.search(r"wrong\s+2/4", demo.stdout), demo.stdout
    assert "all assignments: reports/index.html" in demo.stdout and (root / "reports" / "mini.html").is_file()
    refused = subprocess.run([sys.executable, "-m", "course", "grade", "mini", "--force"], cwd=root, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "cannot sandbox student code here" in refused.stderr
