"""Feedback pages and rubrics on a graded one-notebook course (tests/classroom.py).

The pages are built from the submitted notebooks plus scores and one-line verdicts: these
tests check the naming of visible and hidden failures, pending written answers, plotly
figures and formulas without a network, that no hidden code reaches a student however
the student's code tries, and that rubrics reach the grader but no student.
"""

from __future__ import annotations

import html
import re

import nbformat
import pytest

from course import cells as nbcells
from plotly.offline import get_plotlyjs

import classroom
from classroom import ASSIGNMENT, CRITERIA, MODEL_ANSWER, SECRET_LINES, VISIBLE_CHECK

pytestmark = pytest.mark.xdist_group("grade-fbmini")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("fbmini")
    output = classroom.build(root)
    for student in classroom.STUDENTS:
        assert re.search(rf"{student}\s+(graded|flagged)", output), output
    # The leaker's reading of the hidden module is flagged, so its grade is held and its page
    # shows no verdict at all; a person accepts it here, so that the verdicts it would leak
    # through are on the page the tests below look at.
    held = classroom.page(root, "leaker")
    assert re.search(r"leaker\s+flagged", output) and "Under review." in held
    assert all(v.startswith("Pending") for v in verdicts(held)), verdicts(held)  # the written answer only
    from conftest import run_course

    run_course(root, "review", classroom.ASSIGNMENT, "leaker", "accept", "--reason", "to test its page")
    return root


def text(page: str) -> str:
    """What a reader sees: tags, styles and scripts removed, entities decoded."""
    page = re.sub(r"<style.*?</style>|<script.*?</script>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def verdicts(page: str) -> list[str]:
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", m)).split())
            for m in re.findall(r'<div class="course-verdict[^"]*">(.*?)</div>', page, flags=re.S)]


def test_a_failed_visible_check_is_named_visible_even_in_a_cell_with_hidden_tests(course):
    found = verdicts(classroom.page(course, "visible_fail"))
    assert any("visible check on line 2 failed" in v and VISIBLE_CHECK in v and "value should be positive" in v
               for v in found), found
    assert not any("hidden test failed" in v for v in found), found


def test_a_failed_hidden_test_shows_its_message_only(course):
    page = classroom.page(course, "hidden_fail")
    found = verdicts(page)
    assert any("hidden test failed" in v and "value is not right: look at the sheet again" in v for v in found), found
    assert not any("visible check" in v for v in found), found
    assert "check_value(value)" not in text(page) and "HIDDEN TESTS" not in page


def test_the_correct_submission_passes_everything_autograded(course):
    page = classroom.page(course, "good")
    assert "Autograded: 3 / 3" in text(page)
    assert not verdicts(page) or all("Pending" in v for v in verdicts(page))


def _section(page: str, grade_id: str) -> str:
    """The opening tag of a graded cell's section on the page (attributes in any order)."""
    return next(tag for tag in re.findall(r"<section[^>]*>", page) if f'id="course-{grade_id}"' in tag)


def test_an_ungraded_written_answer_is_pending_not_zero(course):
    page = classroom.page(course, "good")
    assert 'data-status="pending"' in _section(page, "answer_text")
    assert "pending / 2" in text(page) and "0 / 2" not in text(page)
    assert "written answers (2 points): pending" in text(page)


def test_hidden_code_never_reaches_the_page_whatever_the_student_code_does(course):
    graded = (course / "autograded" / "leaker" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    encoded = classroom.encoded_hidden_module()
    # The attack worked in the graded run: the kernel printed the module, plain and encoded...
    assert SECRET_LINES[0] in graded and encoded[:40] in graded
    page = classroom.page(course, "leaker")
    # ...and nothing of it reaches the page: neither the lines nor any chunk of the encoding.
    for line in SECRET_LINES:
        assert line not in page
    chunks = [encoded[i:i + 24] for i in range(0, len(encoded) - 24, 24)]
    assert not [c for c in chunks if c in page]
    assert "from hidden_tests.fbmini import" not in page
    found = verdicts(page)
    assert any("your code raised ValueError" in v and "notebook cell" in v for v in found), found


def test_a_plotly_figure_is_drawn_by_an_inlined_plotly_js(course):
    page = classroom.page(course, "good")
    assert "Plotly.newPlot" in page
    assert page.count("<script") >= 2 and "plotly.js v" in page  # the library itself, inlined


def test_pages_load_nothing_from_a_network_and_render_formulas_as_mathml(course):
    for student in classroom.STUDENTS:
        page = classroom.page(course, student)
        remote = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)=["\']?(?:https?:)?//[^"\'> ]+', page)
        assert not remote, (student, remote[:3])
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page) and "@import" not in page
        # Nothing names a CDN or MathJax, once the inlined plotly.js (which mentions both) is set aside.
        rest = page.replace(get_plotlyjs(), "").lower()
        assert "cdn" not in rest and "mathjax" not in rest and "require.js" not in rest
        assert re.search(r'<math[^>]*display="block"', page) and re.search(r'<math[^>]*display="inline"', page)
        assert "\\frac" not in text(page) and "$$" not in text(page)


def test_the_rubric_is_in_the_graders_notebook_and_nowhere_a_student_looks(course):
    autograded = nbformat.read(course / "autograded" / "good" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    rubric = [c for c in autograded.cells if c.metadata.get("course", {}).get("rubric") == "answer_text"]
    assert len(rubric) == 1 and MODEL_ANSWER in rubric[0].source and CRITERIA in rubric[0].source
    after = autograded.cells[autograded.cells.index(rubric[0]) - 1]
    assert nbcells.grade_id(after) == "answer_text"  # right below the answer it marks
    released = (course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert MODEL_ANSWER not in released and CRITERIA not in released
    for student in classroom.STUDENTS:
        assert CRITERIA not in classroom.page(course, student) and MODEL_ANSWER not in classroom.page(course, student)


# Last: it grades a written answer, as a teaching assistant does in the formgrader.
def test_feedback_written_again_after_a_grader_scores_a_written_answer(course):
    import csv

    from conftest import run_course
    from nbgrader.api import Gradebook

    comment = "Right idea <b>and</b> well put; name the map next time."
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "pytorch-course-pack") as gb:
        grade = gb.find_grade("answer_text", ASSIGNMENT, ASSIGNMENT, "visible_fail")
        grade.manual_score, grade.needs_manual_grade = 1.5, False  # what the formgrader's save does
        gb.find_comment("answer_text", ASSIGNMENT, ASSIGNMENT, "visible_fail").manual_comment = comment
        gb.db.commit()
    untouched = (course / "feedback" / "good" / ASSIGNMENT / f"{ASSIGNMENT}.html").stat().st_mtime_ns
    out = run_course(course, "feedback", ASSIGNMENT, "--student", "visible_fail").stdout
    assert f"{ASSIGNMENT}: feedback pages for 1 student(s)" in out, out
    page = classroom.page(course, "visible_fail")
    assert 'data-status="graded"' in _section(page, "answer_text")
    assert "1.5 / 2" in text(page) and "written answers: 1.5 / 2" in text(page)
    assert any(v == f"The grader's comment: {comment}" for v in verdicts(page)), verdicts(page)
    assert "<b>and</b>" not in page  # the comment is text, not markup
    assert (course / "feedback" / "good" / ASSIGNMENT / f"{ASSIGNMENT}.html").stat().st_mtime_ns == untouched
    with open(course / "grades.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["student"] == "visible_fail")
    assert row["written"] == "1.5" and row["written_status"] == "graded", row
