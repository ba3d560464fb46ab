"""Collecting a learning platform's submissions zip, due dates and the grade exports (in-process)."""

from __future__ import annotations

import csv
import dataclasses
import stat
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from nbgrader.utils import parse_utc

from course import config
from course.commands import collect, export
from course.plugins import late
from course.config import CourseError
from course.gradebook import Score

CET = timezone(timedelta(hours=1))
NOTEBOOK = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])).encode()


def _zip(path: Path, entries: dict[str, bytes], when=(2026, 11, 20, 22, 30, 0)) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


def _roster(path: Path) -> Path:
    path.write_text("student_id,name,lms_id,email\n"
                    "ada,Ada Lovelace,101,ada@uni.example\n"
                    "alan,Alan Turing,102,alan@uni.example\n"
                    "grace,Grace Hopper,103,grace@uni.example\n")
    return path


def moodle(name: str, number: int, file: str) -> str:
    return f"{name}_{number}_assignsubmission_file_/{file}"


def test_moodle_zip_with_renamed_notebooks_lands_in_submitted(tmp_path):
    other = NOTEBOOK.replace(b"x = 1", b"x = 2")
    archive = _zip(tmp_path / "all.zip", {
        moodle("Ada Lovelace", 101, "autodiff.ipynb"): NOTEBOOK,
        moodle("Alan Turing", 102, "Copy of autodiff.ipynb"): other,
        "Grace Hopper_103_assignsubmission_file_autodiff (1).ipynb": NOTEBOOK,  # Moodle's flat layout
        "Grace Hopper_103_assignsubmission_onlinetext_/onlinetext.html": b"<p>see file</p>",
        "__MACOSX/._junk": b"",
    })
    dest = tmp_path / "submitted"
    report = collect.collect("autodiff", archive, _roster(tmp_path / "roster.csv"), tz=CET, dest=dest)
    assert report.problems == []
    assert (dest / "ada" / "autodiff" / "autodiff.ipynb").read_bytes() == NOTEBOOK
    assert (dest / "alan" / "autodiff" / "autodiff.ipynb").read_bytes() == other
    assert (dest / "grace" / "autodiff" / "autodiff.ipynb").read_bytes() == NOTEBOOK
    assert "alan: renamed 'Copy of autodiff.ipynb' to autodiff.ipynb" in report.collected
    assert "grace: renamed 'autodiff (1).ipynb' to autodiff.ipynb" in report.collected
    # nbgrader reads the submission time: 22:30 at UTC+1 is 21:30 UTC.
    stamp = (dest / "ada" / "autodiff" / "timestamp.txt").read_text()
    assert parse_utc(stamp) == datetime(2026, 11, 20, 21, 30)
    assert zipfile.ZipFile(archive).namelist()[1].endswith("Copy of autodiff.ipynb"), "the zip is only read"

    again = collect.collect("autodiff", archive, tmp_path / "roster.csv", tz=CET, dest=dest)
    assert again.collected == [f"{s}: already collected, unchanged" for s in ("ada", "alan", "grace")]


def test_names_outside_the_roster_duplicates_and_ambiguous_uploads_are_reported_not_collected(tmp_path):
    archive = _zip(tmp_path / "all.zip", {
        moodle("Ada Lovelace", 101, "autodiff.ipynb"): NOTEBOOK,
        moodle("Ada  lovelace", 999, "autodiff.ipynb"): NOTEBOOK,  # a second account, same person
        moodle("Alan Turing", 102, "draft.ipynb"): NOTEBOOK,
        moodle("Alan Turing", 102, "final.ipynb"): NOTEBOOK,
        moodle("Mallory Unknown", 104, "autodiff.ipynb"): NOTEBOOK,
        moodle("Grace Hopper", 103, "autodiff.ipynb"): b'{"cells": [',  # truncated upload
    })
    dest = tmp_path / "submitted"
    report = collect.collect("autodiff", archive, _roster(tmp_path / "roster.csv"), dest=dest)
    text = "\n".join(report.problems)
    assert "'Mallory Unknown' is not in the roster" in text
    assert "ada: submitted under several platform names" in text
    assert "alan: 2 notebooks (draft.ipynb, final.ipynb), none named autodiff.ipynb" in text
    assert "grace: autodiff.ipynb is not a readable notebook" in text
    assert report.collected == ["grace"]  # the unreadable one is kept, and grading reports it
    assert sorted(p.name for p in dest.iterdir()) == ["grace"]


def test_a_different_earlier_submission_is_never_overwritten_silently(tmp_path):
    dest = tmp_path / "submitted"
    first = _zip(tmp_path / "first.zip", {moodle("Ada Lovelace", 101, "autodiff.ipynb"): NOTEBOOK})
    second = _zip(tmp_path / "second.zip", {moodle("Ada Lovelace", 101, "autodiff.ipynb"): NOTEBOOK + b"\n"})
    roster = _roster(tmp_path / "roster.csv")
    collect.collect("autodiff", first, roster, dest=dest)
    refused = collect.collect("autodiff", second, roster, dest=dest)
    assert refused.collected == [] and "already holds a different submission" in refused.problems[0]
    assert (dest / "ada" / "autodiff" / "autodiff.ipynb").read_bytes() == NOTEBOOK

    replaced = collect.collect("autodiff", second, roster, replace=True, dest=dest)
    assert "replaced the earlier submission" in replaced.collected[0]
    assert (dest / "ada" / "autodiff" / "autodiff.ipynb").read_bytes() == NOTEBOOK + b"\n"
    kept = list((dest / collect.REPLACED / "ada").glob("autodiff-*/autodiff.ipynb"))
    assert [p.read_bytes() for p in kept] == [NOTEBOOK]


@pytest.mark.parametrize("entry", ["../escape.ipynb", "/etc/escape.ipynb", "a/../../escape.ipynb"])
def test_zip_slip_is_refused(tmp_path, entry):
    archive = _zip(tmp_path / "evil.zip", {moodle("Ada Lovelace", 101, "autodiff.ipynb"): NOTEBOOK, entry: NOTEBOOK})
    with pytest.raises(CourseError, match="points outside the archive"):
        collect.collect("autodiff", archive, dest=tmp_path / "submitted")
    assert not (tmp_path / "submitted").exists() and not (tmp_path / "escape.ipynb").exists()


def test_symlink_in_zip_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo(moodle("Ada Lovelace", 101, "autodiff.ipynb"))
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(CourseError, match="symbolic link"):
        collect.collect("autodiff", archive, dest=tmp_path / "submitted")


def test_nbgrader_layout_and_late_work(tmp_path, monkeypatch):
    due = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    cfg = dataclasses.replace(config.settings(), due={"autodiff": due})
    monkeypatch.setattr(collect, "settings", lambda: cfg)
    archive = _zip(tmp_path / "all.zip", {
        "autodiff_jdoe_attempt_2026-11-20-11-59-00_autodiff.ipynb": NOTEBOOK,
        "autodiff_mroe_attempt_2026-11-21-14-05-00_autodiff.ipynb": NOTEBOOK,
    })
    dest = tmp_path / "submitted"
    report = collect.collect("autodiff", archive, dest=dest)
    assert report.collected == ["jdoe", "mroe"]
    assert report.late == ["mroe: 1 d 2 h 5 min late (handed in 2026-11-21 14:05:00+00:00)"]
    assert parse_utc((dest / "mroe" / "autodiff" / "timestamp.txt").read_text()) == datetime(2026, 11, 21, 14, 5)


def test_due_dates_must_carry_their_offset(tmp_path):
    path = tmp_path / "course.toml"
    path.write_text('[course]\nid = "x"\n[colab]\nrepository = "a/b"\nbranch = "main"\n[due]\nautodiff = 2026-11-20T23:59:00\n')
    with pytest.raises(CourseError, match="UTC offset"):
        config.settings(path)


def test_late_penalty_per_started_day():
    plugin = late.LatePenaltyPerDay(percent_per_day=10)
    assert plugin.late_submission_penalty("s", 20.0, 0) is None
    assert plugin.late_submission_penalty("s", 20.0, 3600) == pytest.approx(2.0)  # a started day
    assert plugin.late_submission_penalty("s", 20.0, 2 * 86400 + 1) == pytest.approx(6.0)
    assert plugin.late_submission_penalty("s", 20.0, 30 * 86400) == 20.0  # never below zero
    assert late.LatePenaltyPerDay().late_submission_penalty("s", 20.0, 86400) is None  # default: report only


def _score(student, assignment="autodiff", manual=None, bonus=0.0, penalty=0.0):
    return Score(student, assignment, auto_score=20.0, auto_max=23.0, bonus=bonus, manual_max=4.0,
                 manual_score=manual, failed_cells=(), late_penalty=penalty)


def test_grades_keep_autograded_bonus_written_and_late_points_apart():
    rows = export.grade_rows([_score("ada", manual=3.0, bonus=2.0), _score("alan", penalty=5.0)])
    ada, alan = rows
    assert (ada["autograded"], ada["bonus"], ada["written"], ada["written_status"], ada["total"]) == \
        ("20", "2", "3", "graded", "25")
    assert (alan["written"], alan["written_max"], alan["written_status"], alan["late_penalty"], alan["total"]) == \
        ("", "4", "pending", "5", "15")
    assert ada["max_score"] == "27"


def test_moodle_export_uses_roster_identifiers_and_leaves_pending_grades_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "submissions", lambda db=None: [
        _score("ada", manual=4.0, bonus=2.0), _score("alan"), _score("stranger", manual=1.0)])
    path, notes = export.write_lms(tmp_path / "moodle.csv", _roster(tmp_path / "roster.csv"))
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["Email address", "Full name", "autodiff"]
    assert rows[1:] == [["ada@uni.example", "Ada Lovelace", "26"], ["alan@uni.example", "Alan Turing", ""],
                        ["grace@uni.example", "Grace Hopper", ""]]
    assert "alan/autodiff: written answers not graded yet; grade left empty" in notes
    assert "stranger has grades but is not in the roster: not exported" in notes
