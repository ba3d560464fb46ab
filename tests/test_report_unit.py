"""The dashboard's numbers, its grading log and its pages, on classes written down by hand
(course/commands/report_stats.py, report_data.py, report_page.py, course/engine/outcome_log.py).
The real pipeline, graded in a sandbox and opened in a browser, is tests/test_report.py."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from course.config import Layout
from course.engine import outcome_log
from course.engine.jobs import Outcome, Status
from course.engine.recording import NOT_RUN
from course.gradebook import Score
from course.commands.report_data import LIKELY_CAUSES, Cell, ClassData, Failure, Submission, Where, _failure
from course.commands.report_page import assignment_page, index_page
from course.commands.report_stats import (NOT_LOGGED, answer_rows, cell_rows, distribution, hardest, health,
                                          point_biserial)


def test_point_biserial_is_pearsons_correlation_with_the_pass_indicator():
    rng = random.Random(3)
    for _ in range(20):
        n = rng.randint(3, 40)
        passed = [rng.random() < 0.6 for _ in range(n)]
        rest = [rng.randint(0, 20) + 0.5 * rng.random() for _ in range(n)]
        if all(passed) or not any(passed):
            continue
        expected = np.corrcoef(np.array(passed, float), np.array(rest))[0, 1]
        assert point_biserial(passed, rest) == pytest.approx(expected, abs=1e-12)


def test_point_biserial_is_undefined_without_variation():
    assert point_biserial([True, True, True], [1.0, 2.0, 3.0]) is None  # everyone passed
    assert point_biserial([False, False], [1.0, 2.0]) is None  # no one passed
    assert point_biserial([True, False, True], [4.0, 4.0, 4.0]) is None  # the rest does not vary
    # failing goes with a low total: the students who passed score 10 elsewhere, those who failed 0
    assert point_biserial([True, True, False, False], [10.0, 10.0, 0.0, 0.0]) == pytest.approx(1.0)


A = "quiz"
T1 = Cell(A, "test_1", "Test 1", "test", 2.0)
T2 = Cell(A, "test_2", "Test 2", "test", 1.0)
B = Cell(A, "bonus_1", "Bonus", "bonus", 3.0)
W = Cell(A, "answer_1", "written answer answer_1", "answer", 4.0)


def _sub(student, t1, t2, bonus, written, where=None, causes=(), flagged=False, late=0.0, log=None, deaths=()):
    failed = {c.key for c, p in ((T1, t1), (T2, t2)) if p < c.points} | ({B.key} if not bonus else set())
    score = Score(student, A, auto_score=t1 + t2, auto_max=3.0, bonus=bonus, manual_max=4.0, manual_score=written,
                  failed_cells=(), late_penalty=0.0, seconds_late=late)
    failures = {k: Failure((where or {}).get(k[1], Where.OTHER), causes if k == T1.key else ())
                for k in failed} if where is not None else {}
    return Submission(score, flagged, flagged, {T1.key: t1, T2.key: t2, B.key: bonus, W.key: written}, failed, failures,
                      tuple(deaths), log)


def _entry(student, status, seconds):
    return outcome_log.Entry(student, A, status, seconds, "", (), "2026-01-01T00:00:00Z")


def _class():
    """Four students, numbers chosen by hand:

    ann  test_1 2/2, test_2 1/1, bonus 3, written 3      (passes everything)
    bob  test_1 0/2 (hidden), test_2 1/1, no bonus, written pending, flagged, 2 h late
    cy   test_1 0/2 (visible, two causes), test_2 0/1 (did not run), no bonus, written 1, kernel died twice
    dee  test_1 2/2, test_2 0/1 (other), no bonus, written pending
    """
    ann = _sub("ann", 2.0, 1.0, 3.0, 3.0, where={}, log=_entry("ann", Status.GRADED, 12.0))
    bob = _sub("bob", 0.0, 1.0, 0.0, None, where={"test_1": Where.HIDDEN, "bonus_1": Where.HIDDEN}, flagged=True,
               late=7200.0, log=_entry("bob", Status.FLAGGED, 30.0))
    cy = _sub("cy", 0.0, 0.0, 0.0, 1.0, where={"test_1": Where.VISIBLE, "test_2": Where.NOT_RUN,
                                               "bonus_1": Where.HIDDEN},
              causes=("sign flipped", "no zero_grad"), log=_entry("cy", Status.LIMIT, 90.0), deaths=("t1", "t2"))
    dee = _sub("dee", 2.0, 0.0, 0.0, None, where={"test_2": Where.OTHER, "bonus_1": Where.HIDDEN})
    lost = _entry("eve", Status.ERROR, 0.0)
    return ClassData(A, [T1, T2, B, W], [ann, bob, cy, dee], [lost])


def test_cell_rows_count_failures_points_and_where():
    rows = {r.cell.grade_id: r for r in cell_rows(_class())}
    assert set(rows) == {"test_1", "test_2", "bonus_1"}  # the written answer is not an autograded row
    t1, t2, bonus = rows["test_1"], rows["test_2"], rows["bonus_1"]
    assert (t1.submissions, t1.failed, t1.points_lost, t1.mean_points) == (4, 2, 4.0, 1.0)
    assert t1.fail_share == 0.5 and t1.earned_share == 0.5
    assert t1.where == {Where.VISIBLE: 1, Where.HIDDEN: 1, Where.NOT_RUN: 0, Where.OTHER: 0}
    assert t1.causes == (("no zero_grad", 1), ("sign flipped", 1))
    assert (t2.failed, t2.points_lost, t2.where[Where.NOT_RUN], t2.where[Where.OTHER]) == (2, 2.0, 1, 1)
    assert t2.causes == ()
    assert (bonus.failed, bonus.points_lost, bonus.mean_points) == (3, 9.0, 0.75)  # 3 points not won, 3 times
    # test_1 passed by ann and dee; their test_2 points 1 and 0, bob's and cy's 1 and 0: no relation
    assert t1.discrimination is None or abs(t1.discrimination) < 1e-12
    # test_2 passed by ann and bob (test_1: 2 and 0), failed by cy and dee (0 and 2): none either
    assert t2.discrimination is None or abs(t2.discrimination) < 1e-12
    # the bonus: ann won it (autograded 3); the others 1, 0, 2 -> r = (3 - 1) / sd * sqrt(1 * 3) / 4
    others = [3.0, 1.0, 0.0, 2.0]
    sd = math.sqrt(sum((x - 1.5) ** 2 for x in others) / 4)
    assert bonus.discrimination == pytest.approx((3 - 1) / sd * math.sqrt(3) / 4)


def test_hardest_ranks_by_the_share_of_points_earned():
    rows = cell_rows(_class())
    ranked = hardest(rows)
    assert [r.cell.grade_id for r in ranked] == ["test_1", "test_2"]  # both earn half; test_1 ties, name first
    other = cell_rows(ClassData("other", [T2], [_sub("zed", 2.0, 0.0, 0.0, None)]))
    assert [(r.assignment, r.cell.grade_id) for r in hardest(rows + other)][0] == ("other", "test_2")  # 0 % earned
    assert hardest(rows, count=1) == ranked[:1]


def test_written_answers_distribution_and_held():
    data = _class()
    (answer,) = answer_rows(data)
    assert (answer.graded, answer.pending, answer.mean) == (2, 2, 2.0)
    dist = distribution(data)
    assert dist.autograded == [3.0, 1.0, 0.0, 2.0] and dist.written == [3.0, 1.0] and dist.written_pending == 2
    assert dist.bonus_max == 3.0 and dist.bonus == [3.0, 0.0, 0.0, 0.0]
    assert [s.student for s in dist.late] == ["bob"] and [s.student for s in dist.held] == ["bob"]
    assert dist.totals == [9.0, 1.0, 1.0, 2.0]  # Score.total: autograded + bonus + written graded


def test_health_counts_the_latest_status_and_kernel_deaths():
    hp = health(_class())
    assert hp.counts == {"graded": 1, "flagged": 1, "limit hit": 1, "error": 1, NOT_LOGGED: 1}
    assert [s.student for s in hp.slowest] == ["cy", "bob", "ann"] and sorted(hp.seconds) == [12.0, 30.0, 90.0]
    assert [s.student for s in hp.deaths] == ["cy"] and hp.unrecorded == 1


def test_the_grading_log_keeps_the_latest_outcome_and_skips_torn_lines(tmp_path):
    layout = Layout(tmp_path)
    outcome_log.append(Outcome("ann", A, Status.ERROR, "could not start"), layout)
    outcome_log.append(Outcome("ann", A, Status.GRADED, seconds=12.3456), layout)
    outcome_log.append(Outcome("ann", A, Status.UP_TO_DATE), layout)  # not logged: the last grading holds
    outcome_log.append(Outcome("bob", A, Status.FLAGGED, "changes sys.modules", ("changes sys.modules",), 3.0),
                       layout)
    with open(outcome_log.path(layout), "a") as log:
        log.write('["not", "an object"]\n{"student": "cy", "assignment": "quiz", "status": "gra')  # torn
    latest = outcome_log.latest(layout)
    assert set(latest) == {("ann", A), ("bob", A)}
    assert latest["ann", A].status is Status.GRADED and latest["ann", A].seconds == 12.35
    assert latest["bob", A].flags == ("changes sys.modules",) and latest["bob", A].status is Status.FLAGGED
    assert len(outcome_log.path(layout).read_text().splitlines()) == 5
    assert outcome_log.latest(Layout(tmp_path / "elsewhere")) == {}


def _error(ename, evalue="", traceback=()):
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": list(traceback)}


def _cell(outputs, metadata=None, source="# Test\nassert x == 1\n### BEGIN HIDDEN TESTS\ncheck(x)\n### END HIDDEN TESTS"):
    return {"cell_type": "code", "source": source, "outputs": outputs, "execution_count": 3,
            "metadata": {"nbgrader": {"grade": True, "grade_id": "t", "solution": False}, **(metadata or {})}}


def test_failures_are_categorised_by_where_the_test_cell_failed():
    frame = "\x1b[0;32mCell In[3], line {}\x1b[0m\n ..."
    assert _failure(_cell([_error("AssertionError", "x", [frame.format(2)])])).where == Where.VISIBLE
    assert _failure(_cell([_error("AssertionError", "x", [frame.format(4)])])).where == Where.HIDDEN
    assert _failure(_cell([_error("DeadKernelError", "died")])).where == Where.NOT_RUN
    assert _failure(_cell([_error("NotRun", NOT_RUN, [NOT_RUN])])).where == Where.NOT_RUN
    assert _failure(_cell([{"output_type": "stream", "name": "stderr", "text": "oops"}])).where == Where.OTHER
    assert _failure(None).where == Where.OTHER
    # notebook files keep sources as lists of lines
    listed = _cell([_error("AssertionError", "x", [frame.format(4)])])
    listed["source"] = [line + "\n" for line in listed["source"].split("\n")]
    assert _failure(listed).where == Where.HIDDEN


def test_likely_causes_are_read_from_the_cell_metadata_hook():
    causes = {"course": {LIKELY_CAUSES: ["eps inside the root", "", 3]}}
    assert _failure(_cell([_error("DeadKernelError")], causes)).causes == ("eps inside the root",)
    assert _failure(_cell([_error("DeadKernelError")], {"course": {LIKELY_CAUSES: "not a list"}})).causes == ()
    assert _failure(_cell([_error("DeadKernelError")])).causes == ()


def test_the_pages_escape_what_they_show_and_inline_plotly_once():
    data = _class()
    data.submissions[1].score = Score("<script>alert(1)</script>", A, 1.0, 3.0, 0.0, 4.0, None, (),
                                      seconds_late=60.0)
    page = assignment_page(data, "quiz-cells.csv")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("Plotly.newPlot") == 3  # scores, cells, grading time
    assert page.count("plotly.js v") == 1  # one copy of the library
    assert "<script src" not in page  # nothing loaded from elsewhere
    rows = cell_rows(data)
    index = index_page([data], {A: "quiz.html"}, hardest(rows))
    assert 'href="quiz.html#cell-test_1"' in index and "<script" not in index


def test_a_class_without_submissions_gets_a_page_without_figures():
    page = assignment_page(ClassData(A, [T1], []), "quiz-cells.csv")
    assert "No submission of quiz is graded yet" in page and "Plotly" not in page


def test_a_report_without_grades_says_what_to_do(tmp_path):
    from course.commands import report
    from course.config import CourseError

    with pytest.raises(CourseError, match="course grade"):
        report.run(layout=Layout(tmp_path))
    assert not (tmp_path / "reports").exists()
