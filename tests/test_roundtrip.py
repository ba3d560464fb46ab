"""The classroom round trip in one test, on a copy of the course:

publish → students check and hand in from the published tree → the platform's zip (Moodle
layout) → collect → grade → feedback → a teaching assistant grades the written answers →
grades.csv and the Moodle import file.

Two students on one assignment keep it lean (grading runs nbgrader: tens of seconds each).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import COURSE_PARTS, copy_course, course_env, run_course

from course import cells as nbcells
from course import config
from course.commands.samples import instructor_solutions

ASSIGNMENT = "autodiff"
DUE = "2026-11-20T23:59:00+01:00"


def _student_work(published: Path, home: Path, filename: str, solved: bool) -> Path:
    """A student's copy of the published notebook, solved with the instructor's answers or untouched."""
    work = home / ASSIGNMENT
    work.mkdir(parents=True)
    for path in (published / "release" / ASSIGNMENT).iterdir():
        (work / (filename if path.suffix == ".ipynb" else path.name)).write_bytes(path.read_bytes())
    nb = nbformat.read(work / filename, as_version=4)
    answers = instructor_solutions(ASSIGNMENT, ASSIGNMENT) if solved else {}
    for cell in nb.cells:
        grade_id = nbcells.grade_id(cell)
        if grade_id in answers:
            cell.source = answers[grade_id]
        # Their id as the roster has it, in the id cell after Setup (utils/variant.py).
        cell.source = cell.source.replace('STUDENT_ID = ""', f'STUDENT_ID = "{home.name}"')
    nbformat.write(nb, work / filename)
    return work / filename


def _hand_in(published: Path, notebook: Path) -> subprocess.CompletedProcess:
    # The student's terminal in the published tree: only its helpers, not the instructor's.
    env = {k: v for k, v in course_env(published).items() if k != "NBGRADER_EXECUTION"}
    return subprocess.run([sys.executable, "-m", "utils.handin", str(notebook)], cwd=published, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.xdist_group("roundtrip")
def test_publish_handin_collect_grade_feedback_export(tmp_path):
    course = copy_course(tmp_path / "course", (*COURSE_PARTS, "requirements.txt"))
    settings = course / "course.toml"
    settings.write_text(settings.read_text().replace("\n[due]\n", f"\n[due]\n{ASSIGNMENT} = {DUE}\n"))
    assert f"\n{ASSIGNMENT} = {DUE}" in settings.read_text()

    # Publish, and two students work from the published tree.
    published = tmp_path / "student-repo"
    run_course(course, "publish", str(published))
    ada = _student_work(published, tmp_path / "ada", f"{ASSIGNMENT}.ipynb", solved=True)
    alan = _student_work(published, tmp_path / "alan", f"Copy of {ASSIGNMENT}.ipynb", solved=False)

    checked = _hand_in(published, ada)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All visible tests pass" in checked.stdout
    assert "Your numbers: autodiff: variant" in checked.stdout and "student id 'ada'" in checked.stdout
    unfinished = _hand_in(published, alan)
    assert unfinished.returncode == 1
    assert "Test 1.1 fails" in unfinished.stdout and "Written answers still empty (YOUR ANSWER HERE): answer_2_2, answer_2_4" in unfinished.stdout
    assert f"named {ASSIGNMENT}.ipynb" in unfinished.stdout
    ada_file = ada.parent / "hand-in" / f"{ASSIGNMENT}.ipynb"
    alan_file = alan.parent / "hand-in" / f"{ASSIGNMENT}.ipynb"
    assert ada_file.is_file() and alan_file.is_file()

    # Moodle's "download all submissions": Alan uploaded his Colab copy, a day late.
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(f"Ada Lovelace_101_assignsubmission_file_/{ASSIGNMENT}.ipynb",
                                    date_time=(2026, 11, 20, 18, 0, 0)), ada_file.read_bytes())
        zf.writestr(zipfile.ZipInfo(f"Alan Turing_102_assignsubmission_file_/Copy of {ASSIGNMENT}.ipynb",
                                    date_time=(2026, 11, 21, 9, 0, 0)), alan.read_bytes())
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name,email\nada,Ada Lovelace,ada@uni.example\nalan,Alan Turing,alan@uni.example\n")
    collected = run_course(course, "collect", ASSIGNMENT, str(archive), "--roster", str(roster),
                           "--timezone", "Europe/Berlin")
    assert f"alan: renamed 'Copy of {ASSIGNMENT}.ipynb' to {ASSIGNMENT}.ipynb" in collected.stdout
    # 09:00 in Berlin is 08:00 UTC; due 22:59 UTC the day before.
    assert "late:\n  alan: 9 h 1 min late" in collected.stdout
    assert "ada" not in collected.stdout.split("late:")[1]

    # Grade; feedback for both; the table marks the late one.
    graded = run_course(course, "grade", ASSIGNMENT, "--strict")
    for student in ("ada", "alan"):
        assert (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()
    rows = {r["student"]: r for r in csv.DictReader(open(course / "grades.csv"))}
    assert rows["ada"]["autograded"] == rows["ada"]["autograded_max"] != "0"
    assert rows["ada"]["written_status"] == "pending" and rows["ada"]["written"] == ""
    assert rows["alan"]["autograded"] == "0" and float(rows["alan"]["seconds_late"]) > 0
    # nbgrader scores an untouched written answer 0 itself: nothing is pending for Alan.
    assert (rows["alan"]["written"], rows["alan"]["written_status"]) == ("0", "graded")
    assert float(rows["ada"]["seconds_late"]) == 0
    assert " late" in next(line for line in graded.stdout.splitlines() if line.startswith("alan"))

    out = tmp_path / "moodle-grades.csv"
    before = run_course(course, "export-lms", "--roster", str(roster), "--out", str(out))
    assert "ada/autodiff: written answers not graded yet; grade left empty" in before.stdout
    assert list(csv.reader(open(out)))[1:] == [["ada@uni.example", "Ada Lovelace", ""],
                                               ["alan@uni.example", "Alan Turing", "0"]]

    # A teaching assistant grades Ada's written answers (as the formgrader would store them).
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", config.settings().course_id) as gb:
        submission = gb.find_submission(ASSIGNMENT, "ada")
        answers = {c.name for nb in submission.notebooks for c in nb.notebook.solution_cells}
        for nb in submission.notebooks:
            for grade in nb.grades:
                if grade.name in answers:
                    grade.manual_score = grade.max_score / 2
                    grade.needs_manual_grade = False
        gb.db.commit()

    exported = run_course(course, "export-lms", "--roster", str(roster), "--out", str(out))
    assert "not graded yet" not in exported.stdout
    moodle = list(csv.reader(open(out)))
    assert moodle[0] == ["Email address", "Full name", ASSIGNMENT]
    ada_total = float(rows["ada"]["autograded"]) + float(rows["ada"]["written_max"]) / 2
    assert moodle[1] == ["ada@uni.example", "Ada Lovelace", f"{ada_total:g}"]
    assert moodle[2] == ["alan@uni.example", "Alan Turing", "0"]
    # grades.csv is rewritten from the same reading of the gradebook.
    after = {r["student"]: r for r in csv.DictReader(open(course / "grades.csv"))}
    assert (after["ada"]["written_status"], after["ada"]["total"]) == ("graded", f"{ada_total:g}")
