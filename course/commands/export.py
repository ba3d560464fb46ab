"""Grades out of the gradebook: the course's grades.csv and a learning platform's import file.

Both come from the same reading of the gradebook (course/gradebook.py), one row per submission:

* ``grades.csv`` keeps the kinds of points apart, so a sum never mixes them by accident:
  autograded points, bonus (extra credit), written answers (graded by a person, or
  ``pending`` with their maximum still open), the late penalty, and the total so far;
* ``python -m course export-lms`` writes the CSV that Moodle's grade import takes
  (Grades → Import → CSV file): an identifier column matching the roster (``Email address``
  when the roster has e-mails, else ``ID number``, the student id) and one grade column per
  assignment, to map onto the assignment's grade item. A submission whose written answers are
  not graded yet gets an empty grade (Moodle leaves those alone) and is listed, so nobody
  receives a provisional number by mistake.

A grade held for review (course/review.py: flagged, and no person has decided yet) counts
nowhere: its total is empty in both files, grades.csv says why in its ``review`` column, and
the export lists it, as it lists pending written answers. The column also says who accepted
or set a grade after review.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..config import GRADEBOOK, GRADES_CSV, LAYOUT, CourseError, Layout
from ..gradebook import Score, Written, submissions
from ..review import Standing, read_log, standing
from .collect import read_roster

GRADE_COLUMNS = ["student", "assignment", "timestamp", "seconds_late", "autograded", "autograded_max",
                 "bonus", "written", "written_max", "written_status", "late_penalty", "total", "max_score", "review"]


def standings(scores: list[Score], layout: Layout = LAYOUT) -> dict[tuple[str, str], Standing]:
    """(student, assignment) -> where each grade stands in review (one reading of the log)."""
    events = read_log(layout)
    return {(s.student, s.assignment): standing(s.student, s.assignment, layout, events) for s in scores}


def grade_rows(scores: list[Score], reviewed: dict[tuple[str, str], Standing] | None = None) -> list[dict[str, object]]:
    rows = []
    for s in scores:
        review = (reviewed or {}).get((s.student, s.assignment), Standing())
        rows.append({
            "student": s.student, "assignment": s.assignment, "timestamp": s.timestamp,
            "seconds_late": f"{s.seconds_late:g}", "autograded": f"{s.auto_score:g}",
            "autograded_max": f"{s.auto_max:g}", "bonus": f"{s.bonus:g}",
            "written": "" if s.manual_score is None else f"{s.manual_score:g}", "written_max": f"{s.manual_max:g}",
            "written_status": s.written.value, "late_penalty": f"{s.late_penalty:g}",
            "total": "" if review.held else f"{s.total:g}", "max_score": f"{s.auto_max + s.manual_max:g}",
            "review": review.describe(),
        })
    return rows


def write_grades(path: Path = GRADES_CSV, db: Path = GRADEBOOK, layout: Layout = LAYOUT,
                 scores: list[Score] | None = None) -> Path:
    """grades.csv from the gradebook (or from ``scores``, if the caller has read them already)."""
    scores = submissions(db) if scores is None else scores
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, GRADE_COLUMNS)
        writer.writeheader()
        writer.writerows(grade_rows(scores, standings(scores, layout)))
    return path


def write_lms(path: Path, roster_path: Path | None, assignments: list[str] | None = None,
              db: Path = GRADEBOOK, layout: Layout = LAYOUT) -> tuple[Path, list[str]]:
    """Moodle's grade-import CSV; returns the path and the notes (held and pending grades,
    unknown students)."""
    scores = [s for s in submissions(db) if not assignments or s.assignment in assignments]
    reviewed = standings(scores, layout)
    if not scores:
        raise CourseError("the gradebook holds no graded submission to export: run `python -m course grade` first")
    names = sorted({s.assignment for s in scores})
    rows = read_roster(roster_path).rows if roster_path else []
    use_email = bool(rows) and all((r.get("email") or "").strip() for r in rows)
    people = {r["student_id"].strip(): r for r in rows}
    notes = []
    students = sorted({s.student for s in scores} | set(people))
    by_key = {(s.student, s.assignment): s for s in scores}
    header = ["Email address" if use_email else "ID number", "Full name", *names]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for student in students:
            row = people.get(student)
            if rows and row is None:
                notes.append(f"{student} has grades but is not in the roster: not exported")
                continue
            ident = row["email"].strip() if use_email else student
            cells = [ident, (row or {}).get("name", "").strip()]
            for name in names:
                score = by_key.get((student, name))
                if score is None:
                    cells.append("")
                elif reviewed[(student, name)].held:
                    cells.append("")
                    notes.append(f"{student}/{name}: held for review ({'; '.join(reviewed[(student, name)].reasons)}); "
                                 "grade left empty: decide with `python -m course review`")
                elif score.written is Written.PENDING:
                    cells.append("")
                    notes.append(f"{student}/{name}: written answers not graded yet; grade left empty")
                else:
                    cells.append(f"{score.total:g}")
            writer.writerow(cells)
    return path, notes
