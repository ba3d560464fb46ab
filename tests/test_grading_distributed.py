"""Grading on a Dask cluster of separate processes gives the grades of a local run.

A user on several machines starts ``dask scheduler`` and ``dask worker`` themselves and
points ``course grade --scheduler`` at it; here both run on this machine as their own
processes (the workers know nothing of the grader but the course's path), and the mini
course of the edge-case tests is graded twice: once that way, once with the local pool.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import copy_course, course_env, run_course
from test_grading_edge_cases import mini_notebook, submission

from course import gradebook

pytestmark = pytest.mark.xdist_group("grade-distributed")
STUDENTS = {"good": {}, "wrong": {"answer": "value = 41"}, "no_helper": {"helper": "pass"},
            "crashes": {"helper": "import os\nos._exit(1)"}}


def _course(path):
    root = copy_course(path, parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    (root / "source" / "mini").mkdir(parents=True)
    nbformat.write(mini_notebook(), root / "source" / "mini" / "mini.ipynb")
    run_course(root, "release", "mini")
    released = nbformat.read(root / "release" / "mini" / "mini.ipynb", as_version=4)
    for student, replaced in STUDENTS.items():
        (root / "submitted" / student / "mini").mkdir(parents=True)
        nbformat.write(submission(released, replaced), root / "submitted" / student / "mini" / "mini.ipynb")
    return root


def _grades(root):
    return {s: {k: v[0] for k, v in gradebook.cell_scores("mini", s, db=root / "gradebook.db").items()} for s in STUDENTS}


def _start(args, env, log):
    """``dask scheduler ...`` or ``dask worker ...``, the commands a user types."""
    return subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def test_a_cluster_of_separate_processes_grades_as_the_local_pool_does(tmp_path):
    local = _course(tmp_path / "local")
    remote = Path(shutil.copytree(local, tmp_path / "remote"))  # the same course, released once
    run_course(local, "grade", "mini", "--workers", "2", timeout=600)
    env = course_env(remote)
    file = tmp_path / "scheduler.json"
    with open(tmp_path / "cluster.log", "w") as log:
        scheduler = _start(["scheduler", "--scheduler-file", str(file), "--port", "0",
                            "--dashboard-address", ":0"], env, log)
        workers = None
        try:
            for _ in range(600):
                if file.exists() and file.stat().st_size:
                    break
                time.sleep(0.1)
            address = json.loads(file.read_text())["address"]
            workers = _start(["worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                             env, log)
            proc = run_course(remote, "grade", "mini", "--scheduler", address, timeout=600)
        finally:
            for process in (workers, scheduler):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=60)
    assert len(re.findall(r"^  \S+\s+(graded|flagged)", proc.stdout, flags=re.M)) == len(STUDENTS), proc.stdout
    assert _grades(remote) == _grades(local)
    assert _grades(local)["good"] == {"test_value": 2, "test_warns": 1, "test_helper": 1, "test_bonus": 2}
