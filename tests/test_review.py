"""Held grades, review decisions, a safe regrade and receipts, on the one-notebook mini course.

Five students hand in one assignment (tests/test_grading_edge_cases.py's ``mini``, plus a
written answer) and are graded in one batch by the real pipeline: ``good``; ``wrong``
(``value = 41``); ``transformer``, who answers nothing and installs an IPython input
transformer that turns every later cell into ``pass`` (a full score, inflated, flagged);
``hidden``, an honest answer that imports ``hidden_tests`` (flagged); ``deleted``, who
deleted the ``test_value`` cell. Then, in file order, as an instructor would: the held
grades stay out of grades.csv, the LMS export and the feedback; decisions release or set
them, each audited; a hidden test is changed and the class regraded into staging (nothing
changes), refused while it would lower grades, applied with ``--allow-lower``; a person's
regrade; verify against the receipts; a new submission is held again; a half-recorded
grade is held until it is graded again.
"""

from __future__ import annotations

import csv
import json
import re

import nbformat
import pytest
from conftest import copy_course, run_course
from test_grading_edge_cases import mini_notebook
from test_grading_hostile import FULL, _scores, submission

from course import cells as nbcells
from course.files import digest

pytestmark = pytest.mark.xdist_group("grade-review")

TRANSFORMER = "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])"
STUDENTS = {
    "good": {},
    "wrong": {"answer": "value = 41"},
    "transformer": {"answer": TRANSFORMER, "helper": "pass"},
    "hidden": {"answer": "value = 42\ntry:\n    import hidden_tests\nexcept ImportError:\n    pass"},
    "deleted": {},
}
WRITTEN = "Why 42? (1 point)"


def review_notebook():
    """The mini assignment with a written answer (1 point) that a person grades."""
    nb = mini_notebook()
    answer = nbformat.v4.new_markdown_cell("Because the sheet says so.", id="why")
    answer.metadata["nbgrader"] = {"grade": True, "grade_id": "why", "locked": False, "points": 1,
                                   "schema_version": 3, "solution": True, "task": False}
    nb.cells += [nbformat.v4.new_markdown_cell(WRITTEN, id="question"), answer]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("review"), parts=("course", "utils", "course.toml",
                                                                 "nbgrader_config.py", "requirements.txt"))
    settings = root / "course.toml"
    settings.write_text(re.sub(r"cell_s = \d+", "cell_s = 30", settings.read_text()))
    (root / "source" / "mini").mkdir(parents=True)
    nbformat.write(review_notebook(), root / "source" / "mini" / "mini.ipynb")
    run_course(root, "release", "mini")
    released = nbformat.read(root / "release" / "mini" / "mini.ipynb", as_version=4)
    for student, replaced in STUDENTS.items():
        nb = submission(released, replaced.get("answer"), replaced.get("helper"))
        for cell in nb.cells:
            if cell.get("id") == "why":
                cell.source = "It is the answer."
        if student == "deleted":
            nb.cells = [c for c in nb.cells if nbcells.grade_id(c) != "test_value"]
        (root / "submitted" / student / "mini").mkdir(parents=True)
        nbformat.write(nb, root / "submitted" / student / "mini" / "mini.ipynb")
    output = run_course(root, "grade", "mini", "--workers", "2", timeout=900).stdout
    return root, output


def auto(root, student) -> dict[str, float]:
    """The scores of the autograded cells in the gradebook."""
    return {k: v for k, v in _scores(root, student).items() if k != "why"}


def grades(root) -> dict[str, dict[str, str]]:
    with open(root / "grades.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def log(root) -> list[dict]:
    path = root / "review.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def records(root) -> dict[str, str]:
    """Hashes of everything grading and review write in the course."""
    return {name: digest([root / name]) if (root / name).exists() else "" for name in
            ("gradebook.db", "grades.csv", "review.jsonl", "autograded", "feedback")}


def page(root, student) -> str:
    return (root / "feedback" / student / "mini" / "mini.html").read_text()


def test_flagged_grades_are_held_out_of_grades_csv_the_export_and_the_feedback(course):
    root, output = course
    for student in ("transformer", "hidden"):
        assert re.search(rf"  {student}\s+flagged: .*held for review", output), output
    _grade_written_answers(root, STUDENTS)
    # The transformer's run scored everything: the hold is what keeps that number in.
    assert auto(root, "transformer") == FULL
    rows = grades(root)
    assert rows["transformer"]["total"] == "" and "hooks into IPython" in rows["transformer"]["review"]
    assert rows["hidden"]["total"] == "" and "touches the grader's hidden tests" in rows["hidden"]["review"]
    assert rows["transformer"]["review"].startswith("held for review: ")
    assert rows["good"]["total"] == "7" and rows["good"]["review"] == ""
    out = run_course(root, "export-lms", "--out", str(root / "lms.csv")).stdout
    exported = {r[0]: r[2] for r in csv.reader(open(root / "lms.csv"))}
    assert exported["transformer"] == exported["hidden"] == "" and exported["wrong"] == "3"
    assert "transformer/mini: held for review" in out and "hidden/mini: held for review" in out
    held, good = page(root, "transformer"), page(root, "good")
    assert "Under review." in held and "Autograded:" not in held and 'data-status="passed"' not in held
    assert "Autograded: <b>4 / 4</b>" in good and "Under review" not in good


def test_the_formgrader_shows_the_evidence_on_top_of_the_notebook_and_no_student_does(course):
    root, _ = course
    graded = nbformat.read(root / "autograded" / "transformer" / "mini" / "mini.ipynb", as_version=4)
    evidence = graded.cells[0]
    assert evidence.metadata["course"]["evidence"] and "**Held:**" in evidence.source
    assert "hooks into IPython" in evidence.source and "review mini transformer accept" in evidence.source
    good = nbformat.read(root / "autograded" / "good" / "mini" / "mini.ipynb", as_version=4)
    assert not any(c.metadata.get("course", {}).get("evidence") for c in good.cells)
    assert "Why the grader flagged it" not in page(root, "transformer")


def test_a_deleted_test_cell_is_put_back_at_its_place_and_run(course):
    root, output = course
    line = next(l for l in output.splitlines() if l.startswith("  deleted "))
    assert "lacked the cells test_value: put back" in line, line
    assert auto(root, "deleted") == FULL
    graded = nbformat.read(root / "autograded" / "deleted" / "mini" / "mini.ipynb", as_version=4)
    order = [nbcells.grade_id(c) for c in graded.cells]
    assert order.index("answer") + 1 == order.index("test_value")


def test_every_recorded_grade_has_a_receipt(course):
    root, _ = course
    out = run_course(root, "receipt", "good", "mini").stdout
    for name in ("submission", "source", "hidden_tests", "helpers", "grader", "nbgrader_config", "environment"):
        assert re.search(rf"^  {name}\s+(\w{{64}}|\(none\))", out, flags=re.M), out
    assert re.search(r"device\s+cpu", out) and re.search(r"threads\s+1", out) and re.search(r"hash_seed\s+0", out)
    receipt = json.loads((root / "autograded" / "good" / "mini" / "receipt.json").read_text())
    assert receipt["cells"]["mini"] == {k: float(v) for k, v in FULL.items()} and receipt["flags"] == []
    assert f"receipt {receipt['id']}" in out
    assert f"Receipt of this grade: {receipt['id'][:12]} (graded " in page(root, "good")  # its short form
    transformer = json.loads((root / "autograded" / "transformer" / "mini" / "receipt.json").read_text())
    assert any("hooks into IPython" in f for f in transformer["flags"])


def test_review_lists_the_held_grades_with_their_evidence(course):
    root, _ = course
    out = run_course(root, "review", "mini").stdout
    assert "mini/transformer: HELD" in out and "mini/hidden: HELD" in out and "mini/good" not in out
    assert "hooks into IPython in cell 'answer'" in out and "2 grade(s) held for review" in out


def test_accept_and_set_release_held_grades_and_each_decision_is_audited(course):
    root, _ = course
    run_course(root, "review", "mini", "hidden", "accept", "--reason", "imports it, uses nothing", "--by", "ta")
    run_course(root, "review", "mini", "transformer", "set", "1", "--reason", "only the warning test works",
               "--by", "prof")
    too_many = run_course(root, "review", "mini", "wrong", "set", "9", "--reason", "x", check=False)
    assert too_many.returncode == 2 and "from 0 to 4" in too_many.stderr
    rows = grades(root)
    assert rows["hidden"]["total"] == "7" and rows["hidden"]["review"].startswith("accepted by ta")
    assert (rows["transformer"]["autograded"], rows["transformer"]["bonus"], rows["transformer"]["total"]) == \
        ("1", "0", "2")
    assert "set to 1 by prof" in rows["transformer"]["review"]
    # The gradebook holds the set: the test cells in notebook order take the points.
    assert auto(root, "transformer") == {"test_value": 1, "test_warns": 0, "test_helper": 0, "test_bonus": 0}
    accept, set_ = log(root)
    assert (accept["event"], accept["by"], accept["before"]["held"], accept["after"]["held"]) == ("accept", "ta", True, False)
    assert (set_["before"]["total"], set_["after"]["total"], set_["points"]) == (7, 2, 1)
    assert set_["at"].endswith("Z") and set_["submission"] and set_["flags"]
    held = page(root, "transformer")
    assert "Under review" not in held and "set to 1: only the warning test works" in held
    run_course(root, "export-lms", "--out", str(root / "lms.csv"))
    exported = {r[0]: r[2] for r in csv.reader(open(root / "lms.csv"))}
    assert (exported["transformer"], exported["hidden"]) == ("2", "7")


def test_regrade_stages_the_change_shows_the_diff_and_writes_nothing(course):
    root, _ = course
    # A deliberate change to a hidden test: the answer must now be 41.
    source = root / "source" / "mini" / "mini.ipynb"
    source.write_text(source.read_text().replace("value * 2 == 84", "value * 2 == 82"))
    before = records(root)
    out = run_course(root, "regrade", "mini", "--workers", "2", timeout=900).stdout
    assert records(root) == before, "regrade without --apply wrote the course's records"
    assert "5 grade(s) graded again: 1 raised, 3 lowered, 1 unchanged" in out, out
    assert re.search(r"  good\s+7\s+5\s+LOWERED", out) and re.search(r"  wrong\s+3\s+5\s+raised", out), out
    assert re.search(r"test_value: 2 -> 0  AssertionError: value is not right", out), out
    assert re.search(r"  transformer\s+2\s+2\s+unchanged  \(a review decision sets it\)", out), out
    diff = (root / "regrade" / "mini" / "diff.html").read_text()
    assert "value is not right" in diff and "1 raised, 3 lowered, 1 unchanged" in diff


def test_apply_refuses_to_lower_grades_unless_allowed_and_lists_them(course):
    root, _ = course
    before = records(root)
    refused = run_course(root, "regrade", "mini", "--apply", check=False)
    assert refused.returncode == 2 and "3 grade(s) would be lowered; nothing was changed" in refused.stderr
    for student in ("good", "hidden", "deleted"):
        assert re.search(rf"  {student}: \d+ -> \d+", refused.stderr), refused.stderr
    assert records(root) == before


def test_apply_records_the_staged_grades_keeps_written_answers_and_decisions_and_audits_each_change(course):
    root, _ = course
    count = len(log(root))
    out = run_course(root, "regrade", "mini", "--apply", "--allow-lower", "--by", "prof").stdout
    assert "4 grade(s) changed (1 raised, 3 lowered, 0 unchanged)" in out, out
    rows = grades(root)
    assert (rows["good"]["total"], rows["good"]["written"], rows["good"]["written_status"]) == ("5", "1", "graded")
    assert rows["wrong"]["autograded"] == "4"
    assert rows["transformer"]["total"] == "2" and "set to 1" in rows["transformer"]["review"]
    assert rows["hidden"]["total"] == "5" and rows["hidden"]["review"].startswith("accepted by ta")
    applied = log(root)[count:]
    assert sorted(e["student"] for e in applied) == ["deleted", "good", "hidden", "wrong"]
    good = next(e for e in applied if e["student"] == "good")
    assert (good["event"], good["by"], good["cells"], good["before"]["total"], good["after"]["total"]) == \
        ("applied", "prof", {"test_value": [2, 0]}, 7, 5)
    assert not (root / "regrade" / "mini").exists()
    again = run_course(root, "grade", "mini").stdout
    assert len(re.findall(r"^  \S+\s+up to date$", again, flags=re.M)) == len(STUDENTS), again  # the applied grades are current


def test_a_persons_regrade_grades_again_and_the_decision_stands(course):
    root, _ = course
    run_course(root, "review", "mini", "transformer", "regrade", "--by", "prof", timeout=600)
    event = log(root)[-1]
    assert (event["event"], event["before"]["total"], event["after"]["total"]) == ("regrade", 2, 2)
    assert auto(root, "transformer")["test_value"] == 1 and grades(root)["transformer"]["total"] == "2"
    assert grades(root)["transformer"]["written_status"] == "graded"  # the same notebooks: still graded


def test_verify_reports_a_score_that_differs_from_its_receipt(course):
    root, _ = course
    receipt_path = root / "autograded" / "wrong" / "mini" / "receipt.json"
    receipt = json.loads(receipt_path.read_text())
    receipt["cells"]["mini"]["test_helper"] = 0.0  # as if an earlier run had scored it otherwise
    receipt_path.write_text(json.dumps(receipt))
    # Identical receipts over two runs: tests/test_grading.py verifies samples of every assignment.
    proc = run_course(root, "verify", "mini", "--student", "wrong", check=False, timeout=600)
    assert proc.returncode == 1, proc.stdout
    assert re.search(r"mini/wrong\s+DIFFERS: mini/test_helper 0.0 -> 1.0", proc.stdout), proc.stdout
    assert "0 of 1 identical to their receipts" in proc.stdout


def test_a_new_submission_is_held_again_and_a_half_recorded_grade_is_held_until_graded(course):
    root, _ = course
    path = root / "submitted" / "transformer" / "mini" / "mini.ipynb"
    path.write_text(path.read_text().replace("lambda lines", "lambda lines_"))  # handed in again
    for name in ("receipt.json", ".graded-from"):  # the grader killed while recording good
        (root / "autograded" / "good" / "mini" / name).unlink()
    run_course(root, "scores")
    run_course(root, "export-lms", "--out", str(root / "lms.csv"))
    assert "recording was cut short" in grades(root)["good"]["review"] and grades(root)["good"]["total"] == ""
    out = run_course(root, "grade", "mini", "--workers", "2", timeout=900).stdout
    assert re.search(r"  good\s+graded", out) and re.search(r"  transformer\s+flagged: .*held for review", out), out
    rows = grades(root)
    # Its last receipt is gone, so nobody can tell the notebooks are the ones the grader read:
    # the written answer waits for a person again (as nbgrader does on every autograde).
    assert (rows["good"]["total"], rows["good"]["written_status"], rows["good"]["review"]) == ("4", "pending", "")
    assert rows["transformer"]["total"] == "" and rows["transformer"]["review"].startswith("held for review")
    # The set was made for the notebooks handed in before: the new run's own scores are back.
    assert auto(root, "transformer") == FULL


def _grade_written_answers(root, students) -> None:
    """What the formgrader's save does: each written answer gets its point."""
    from course.gradebook import open_gradebook

    with open_gradebook(root / "gradebook.db") as gb:
        for student in students:
            grade = gb.find_grade("why", "mini", "mini", student)
            grade.manual_score, grade.needs_manual_grade = 1.0, False
        gb.db.commit()
    run_course(root, "feedback", "mini")
