"""The course dashboard (``python -m course report``) on a class graded by the real pipeline,
and opened offline in headless Chromium.

The class is fbmini (tests/classroom.py) with six students: ``good``; ``visible_fail`` and
``hidden_fail`` fail test_value's visible check and its hidden test; ``leaker`` prints the
hidden test module (flagged, and its helper fails the hidden test of test_helper); ``dies``
crashes the kernel in its answer cell, so test_value's visible check finds no ``value``;
``broken`` hands in a file that is not a notebook (not graded). ``hidden_fail`` is 36 hours
late. A causes file, as ``course causes`` writes one, names a cause for each of test_value's
failures; grading records them (not for ``dies``, whose failure only says that ``value`` is not
defined). After grading, a person grades two written answers.
Every expected number below is reasoned from that design, not read off a run.
"""

from __future__ import annotations

import csv
import json
import math
import time

import nbformat
import pytest

import browser
import classroom
from classroom import ASSIGNMENT, HIDDEN_MODULE
from conftest import run_course

pytestmark = pytest.mark.xdist_group("report")
DUE = "2024-01-01T00:00:00+00:00"
HANDED_IN = "2024-01-02 12:00:00 UTC"  # 36 hours after the due date
CRASH = "import faulthandler\nfaulthandler._sigsegv()  # the kernel dies here\nvalue = 42"
# test_value's failures, normalised (utils/causes.py), and the causes the grader should record
SIGNATURES = {"AssertionError: value should be positive": ["sign slip"],
              "AssertionError: value is not right: look at the sheet again": ["off by one"],
              "NameError: name <q> is not defined": ["off by one"]}  # says nothing: never used
WRITTEN = {"good": 2.0, "visible_fail": 1.0}  # points a person gave answer_text (of 2)


def _hand_in_more(root, released):
    folder = root / "submitted" / "dies" / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(classroom.submission(released, {"answer": CRASH}), folder / f"{ASSIGNMENT}.ipynb")
    broken = root / "submitted" / "broken" / ASSIGNMENT
    broken.mkdir(parents=True)
    (broken / f"{ASSIGNMENT}.ipynb").write_text('{"cells": [')
    (root / "submitted" / "hidden_fail" / ASSIGNMENT / "timestamp.txt").write_text(HANDED_IN)
    (root / "mutations").mkdir()
    (root / "mutations" / f"{ASSIGNMENT}.causes.json").write_text(json.dumps({"signatures": [
        {"cell": "test_value", "signature": signature, "causes": causes} for signature, causes in SIGNATURES.items()]}))
    settings = root / "course.toml"
    settings.write_text(settings.read_text().replace("[due]\n", f"[due]\n{ASSIGNMENT} = {DUE}\n", 1))


def _grade_written_answers(root):
    from course.gradebook import open_gradebook

    with open_gradebook(root / "gradebook.db") as gb:  # as the formgrader does
        for student, points in WRITTEN.items():
            grade = gb.find_grade("answer_text", ASSIGNMENT, ASSIGNMENT, student)
            grade.manual_score = points
            grade.needs_manual_grade = False
        gb.db.commit()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    classroom.build(root, before_grading=_hand_in_more)
    _grade_written_answers(root)
    output = run_course(root, "report").stdout
    assert f"reports/{ASSIGNMENT}.html" in output, output
    return root


def _rows(root):
    with open(root / "reports" / f"{ASSIGNMENT}-cells.csv", newline="") as handle:
        return {row["cell"]: row for row in csv.DictReader(handle)}


def test_the_cells_table_counts_failures_where_they_happened_and_causes(course):
    rows = _rows(course)
    assert list(rows) == ["test_value", "test_helper", "answer_text"]  # notebook order
    value, helper, answer = rows["test_value"], rows["test_helper"], rows["answer_text"]
    assert value["title"] == "Test value" and value["points"] == "2"
    # broken was not graded: five submissions
    assert (value["submissions"], value["failed"], value["points_lost"]) == ("5", "3", "6")
    assert (value["failed_visible"], value["failed_hidden"], value["failed_did_not_run"]) == ("2", "1", "0")
    assert float(value["mean_points"]) == pytest.approx(0.8)
    assert value["likely_causes"] == "off by one: 1; sign slip: 1"  # dies: a missing name names no cause
    assert (helper["failed"], helper["failed_hidden"], helper["points_lost"], helper["likely_causes"]) == \
        ("1", "1", "1", "")
    # passed test_value: good, leaker (test_helper 1, 0); failed: the others (1, 1, 1). Computed by hand:
    # r = (0.5 - 1) / 0.4 * sqrt(2 * 3) / 5; test_helper's comes out the same
    assert float(value["discrimination"]) == pytest.approx(-math.sqrt(6) / 4, abs=1e-4)
    assert float(helper["discrimination"]) == pytest.approx(-math.sqrt(6) / 4, abs=1e-4)
    assert (answer["kind"], answer["graded"], answer["pending"], float(answer["mean_points"])) == \
        ("answer", "2", "3", 1.5)


def _hidden_texts() -> list[str]:
    lines = [line.strip() for line in HIDDEN_MODULE.splitlines() if len(line.strip()) >= 12]
    return lines + ["check_value(value)", "check_helper(helper)", "hidden_tests.fbmini",
                    classroom.encoded_hidden_module()[:40], *classroom.SECRET_LINES]


def test_no_hidden_test_or_student_output_reaches_the_dashboard(course):
    # the leaker's graded notebook holds the hidden module, printed and encoded: the report read it
    graded = (course / "autograded" / "leaker" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "reference_secret_value" in graded
    for name in (f"{ASSIGNMENT}.html", f"{ASSIGNMENT}-cells.csv", "index.html"):
        text = (course / "reports" / name).read_text()
        leaked = [t for t in _hidden_texts() if t in text]
        assert not leaked, f"{name} shows {leaked}"
        assert "value should be positive" not in text  # failure messages are counted, never shown


def test_the_dashboard_opens_offline_and_draws_its_figures(course, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser.start_browser(tmp_path / "chromium-profile")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        driver.get((course / "reports" / f"{ASSIGNMENT}.html").as_uri())
        deadline = time.monotonic() + 30
        while len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) < 3 \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        plots = driver.execute_script(
            "return [...document.querySelectorAll('.js-plotly-plot')].map(p => [p.parentElement.closest('.figure').id,"
            " p.querySelectorAll('.main-svg').length, p.querySelectorAll('.barlayer .point path').length])")
        assert sorted(p[0] for p in plots) == ["figure-cells", "figure-scores", "figure-time"], plots
        assert all(svgs >= 1 and bars >= 1 for _, svgs, bars in plots), plots
        remote = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith('file:') && !n.startsWith('data:'));")
        assert remote == [], remote
        body = driver.find_element(By.TAG_NAME, "body").text
        assert not [t for t in _hidden_texts() if t in body]
        late_held = {row[0]: row[1:] for row in _table(driver, "late-held")[1:]}
        assert late_held["hidden_fail"][:2] == ["36 h", ""] and late_held["leaker"][2].startswith("held"), late_held
        assert set(late_held) == {"hidden_fail", "leaker"}, late_held
        deaths = _table(driver, "deaths-table")
        assert deaths[1:] == [["dies", "1", "answer"]], deaths
        status = dict(zip(*_table(driver, "status-table")))
        assert (status["flagged"], status["error"], status["not logged"]) == ("1", "1", "0"), status
        assert sum(map(int, status.values())) == 6, status
        browser.SCREENSHOTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(browser.SCREENSHOTS / "report-assignment.png"))
        driver.get((course / "reports" / "index.html").as_uri())
        first = driver.find_element(By.CSS_SELECTOR, "#hardest-table tr:nth-child(2)").text
        assert "test_value" in first and "3 of 5" in first, first
        driver.find_element(By.LINK_TEXT, ASSIGNMENT).click()
        assert driver.current_url.endswith(f"/reports/{ASSIGNMENT}.html")
        # The student's side: the feedback page names the likely cause under the verdict, and
        # shows no hidden test.
        driver.get((course / "feedback" / "visible_fail" / ASSIGNMENT / f"{ASSIGNMENT}.html").as_uri())
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Likely cause: sign slip" in body, body[:2000]
        assert not [t for t in _hidden_texts() if t in body]
        driver.save_screenshot(str(browser.SCREENSHOTS / "feedback-likely-cause.png"))
    finally:
        driver.quit()


def _table(driver, table_id: str) -> list[list[str]]:
    return driver.execute_script(
        "return [...document.getElementById(arguments[0]).rows].map(r => [...r.cells].map(c => c.innerText.trim()))",
        table_id)
