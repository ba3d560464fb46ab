"""The review log, the standing of a grade, receipts and what grades.csv and the pages say of a
held grade, without grading (tests/test_review.py grades a class through all of it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from course import receipts, review
from course.commands import export
from course.config import Layout
from course.gradebook import Score
from course.plugins.feedback import review_note

FLAG = "hooks into IPython in cell 'answer' (input_transformers)"


def _receipt(layout, student="ann", flags=(), submission="nb1", cells=None):
    body = {"version": 1, "student": student, "assignment": "a", "handed_in": "",
            "inputs": {name: "h" for name in receipts.INPUTS} | {"submission": submission},
            "run": {key: "x" for key in receipts.RUN}, "flags": list(flags),
            "cells": cells or {"a": {"t1": 2.0, "t2": 1.0, "bonus": 2.0}}}
    receipt = {"id": receipts.identity(body), **body, "graded_at": "2026-01-01T00:00:00Z"}
    receipts.write(layout, receipt)
    return receipt


def _decision(kind, submission="nb1", flags=(FLAG,), student="ann", **extra):
    return {"event": kind, "student": student, "assignment": "a", "at": "2026-01-02T00:00:00Z", "by": "prof",
            "reason": "checked", "submission": submission, "flags": list(flags), **extra}


def test_the_log_only_grows_and_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    layout = Layout(tmp_path)
    review.append(layout, _decision("accept"))
    with open(layout.review_log, "ab") as handle:  # a crash in the middle of an append
        handle.write(b'{"event": "set", "student": "ann", "assign')
    before = layout.review_log.read_bytes()
    review.append(layout, _decision("set", points=0.0))
    after = layout.review_log.read_bytes()
    assert after.startswith(before)  # never rewritten
    assert [e["event"] for e in review.read_log(layout)] == ["accept", "set"]
    with pytest.raises(ValueError):
        review.append(layout, {"event": "erase", "student": "ann", "assignment": "a"})


def test_appends_from_several_processes_each_stay_whole(tmp_path):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from course import review; "
            "from course.config import Layout\nfor i in range(50):\n    review.append(Layout(Path(sys.argv[2])), "
            "{'event': 'regrade', 'student': 's' + sys.argv[3], 'assignment': 'a', 'reason': 'x' * 3000})")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    procs = [subprocess.Popen([sys.executable, "-c", code, root, str(tmp_path), str(n)]) for n in range(3)]
    assert all(p.wait() == 0 for p in procs)
    events = review.read_log(Layout(tmp_path))
    assert len(events) == 150 and len(tmp_path.joinpath("review.jsonl").read_text().splitlines()) == 150


def test_a_decision_covers_the_same_notebooks_and_at_most_the_flags_it_saw():
    seen = [_decision("accept", flags=[FLAG, "changed what the tests rely on: <function f at 0x7f1>"])]
    assert review.in_force(seen, "ann", "a", "nb1", [FLAG]) == seen[0]
    assert review.in_force(seen, "ann", "a", "nb1", ["changed what the tests rely on: <function f at 0x9a2>"])
    assert review.in_force(seen, "ann", "a", "nb1", [FLAG, "uses the network in cell 'x' (socket)"]) is None
    assert review.in_force(seen, "ann", "a", "nb2", [FLAG]) is None  # handed in again
    assert review.in_force(seen, "bob", "a", "nb1", [FLAG]) is None
    later = seen + [_decision("regrade"), _decision("set", points=1.0)]
    assert review.in_force(later, "ann", "a", "nb1", [FLAG])["event"] == "set"  # the latest decision


def test_a_flagged_receipt_is_held_until_a_decision_on_the_same_notebooks(tmp_path):
    layout = Layout(tmp_path)
    _receipt(layout, flags=[FLAG])
    held = review.standing("ann", "a", layout, [])
    assert held.held and held.reasons == (FLAG,) and held.describe() == f"held for review: {FLAG}"
    accepted = review.standing("ann", "a", layout, [_decision("accept")])
    assert not accepted.held and accepted.describe() == "accepted by prof (2026-01-02): checked"
    set_ = review.standing("ann", "a", layout, [_decision("set", points=3.0, bonus=1.0)])
    assert set_.describe() == "set to 3 +1 bonus by prof (2026-01-02): checked"
    assert review.standing("ann", "a", layout, [_decision("accept", submission="nb0")]).held  # other notebooks
    _receipt(layout, student="bob")
    assert review.standing("bob", "a", layout, []) == review.Standing(receipt=receipts.read(layout, "bob", "a"))


def test_a_set_is_spread_over_the_cells_in_order_so_that_the_sums_stay_exact():
    receipt = {"cells": {"a": {"t1": 2.0, "t2": 1.0, "bonus": 2.0}}}
    registered = {"a": {"t1": (2.0, None), "t2": (1.0, None), "bonus": (0.0, 2.0)}}
    scores, extra = review._spread(receipt, registered, 2.5, 1.0)
    assert scores == {"a": {"t1": 2.0, "t2": 0.5, "bonus": 0.0}} and extra == {"a": {"bonus": 1.0}}
    scores, extra = review._spread(receipt, registered, 0.0, 0.0)
    assert set(scores["a"].values()) == {0.0} and extra == {"a": {"bonus": 0.0}}


def test_a_receipt_s_id_covers_everything_but_the_time(tmp_path):
    layout = Layout(tmp_path)
    one = _receipt(layout)
    again = dict(one, graded_at="2027-01-01T00:00:00Z")
    assert receipts.identity(again) == one["id"]
    other = json.loads(json.dumps(one))
    other["cells"]["a"]["t2"] = 0.0
    other["inputs"]["hidden_tests"] = "changed"
    assert receipts.identity(other) != one["id"]
    assert receipts.changed_cells(one, other) == {"a/t2": (1.0, 0.0)}
    assert receipts.changed_inputs(one, other) == ["hidden_tests"]
    assert receipts.read(layout, "ann", "a") == one
    layout.receipt("ann", "a").write_text("{not json")
    assert receipts.read(layout, "ann", "a") is None


def test_a_held_grade_has_no_total_in_grades_csv_and_says_why():
    score = Score("ann", "a", auto_score=4.0, auto_max=4.0, bonus=2.0, manual_max=0.0, manual_score=0.0,
                  failed_cells=())
    held = review.Standing(True, (FLAG,))
    row, = export.grade_rows([score], {("ann", "a"): held})
    assert (row["autograded"], row["total"], row["review"]) == ("4", "", f"held for review: {FLAG}")
    row, = export.grade_rows([score])
    assert (row["total"], row["review"]) == ("6", "")


def test_the_feedback_page_of_a_held_grade_shows_no_points_and_a_set_one_says_why():
    assert review_note(review.Standing(True, (FLAG,))) == {
        "held": True, "plain": True, "note": review_note(review.Standing(True, ()))["note"]}
    set_ = review_note(review.Standing(False, (FLAG,), _decision("set", points=0.0, bonus=0.0)))
    assert set_ == {"plain": True, "note": "After review, your autograded points were set to 0: checked"}
    assert review_note(review.Standing(False, (FLAG,), _decision("accept"))) == {}
    assert FLAG not in str(review_note(review.Standing(True, (FLAG,))))  # the evidence is for graders


def test_the_evidence_cell_is_the_only_one_and_a_submission_cannot_bring_its_own():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("**Held:** fake", id="x")])
    nb.cells[0].metadata["course"] = {"evidence": True}
    text = review.evidence(review.Standing(True, (FLAG,)), "ann", "a")
    review.place_evidence(nb, text)
    assert len(nb.cells) == 1 and nb.cells[0].source == text and "input\\_transformers" in text
    review.place_evidence(nb, None)
    assert nb.cells == []


def test_in_a_terminal_each_held_grade_is_asked_for_in_turn(monkeypatch):
    from course.commands import review as command

    made = []
    monkeypatch.setattr(command, "describe", lambda student, assignment, now: f"{assignment}/{student}")
    monkeypatch.setattr(command, "decide", lambda a, s, words, by, reason, unsafe=False: made.append(
        (s, words, by, reason)) or {"event": words[0], "before": {"total": 6.0}, "after": {"total": 0.0}})
    answers = iter(["set 0", "patched the checks", "", "q"])
    held = [(s, "a", review.Standing(True, (FLAG,))) for s in ("ann", "bob", "cy", "dan")]
    assert command.ask(held, "prof", prompt=lambda _: next(answers)) == 1
    assert made == [("ann", ["set", "0"], "prof", "patched the checks")]  # bob left held, then quit
