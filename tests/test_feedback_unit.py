"""Feedback verdicts, page building and rubrics, in-process on hand-made notebooks (no nbgrader run)."""

from __future__ import annotations

import nbformat
import pytest
from conftest import ROOT

from course import cells as nbcells
from course.cells import rubric_of
from course.plugins.feedback import build_page, hidden_lines, verdict, visible_source
from course.plugins.feedback_page import MathMLRenderer, mathml
from course.plugins.rubric import InsertRubrics, StripRubrics, rubrics

TEST_SOURCE = ('# Test 1\nassert value > 0, "value should be positive"\n### BEGIN HIDDEN TESTS\n'
               'assert value == secret_reference(), "value is not right"\n### END HIDDEN TESTS\n'
               'assert isinstance(value, int), "value should be an int"')


def graded_cell(grade_id, source, outputs=(), count=7):
    cell = nbformat.v4.new_code_cell(source, id=grade_id)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": 2,
                                 "schema_version": 3, "solution": False, "task": False}
    cell.outputs, cell.execution_count = list(outputs), count
    return cell


def error(ename, evalue, frames):
    """An error output as IPython writes it: a header, one entry per frame, the last line."""
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[
        "\x1b[31m---------------------------------------------------------------------------\x1b[39m",
        f"\x1b[31m{ename}\x1b[39m    Traceback (most recent call last)", *frames, f"{ename}: {evalue}"])


def cell_frame(count, line):
    return f"\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[{count}]\x1b[39m\x1b[32m, line {line}\x1b[39m\n  ..."


def file_frame(path, line):
    return f"File \x1b[32m{path}:{line}\x1b[39m, in \x1b[36mcheck\x1b[39m\x1b[34m(x)\x1b[39m\n  ..."


def test_visible_source_is_what_the_release_shows():
    assert visible_source(TEST_SOURCE) == ('# Test 1\nassert value > 0, "value should be positive"\n'
                                           'assert isinstance(value, int), "value should be an int"')


@pytest.mark.parametrize("line, where, shown_line", [(2, "visible", 2), (6, "visible", 3), (4, "hidden", None)])
def test_the_failing_line_names_the_failure_visible_or_hidden(line, where, shown_line):
    cell = graded_cell("t", TEST_SOURCE, [error("AssertionError", "the message", [cell_frame(7, line)])])
    result = verdict(cell, {"7"}, {"7": 3}, set())
    assert result["where"] == where and result["line"] == shown_line
    assert result["message"] == "AssertionError: the message"
    if where == "visible":  # the quoted line is the visible one that failed, never a hidden one
        assert result["code"] == TEST_SOURCE.splitlines()[line - 1].strip() and "secret" not in result["code"]


def test_a_message_raised_in_student_code_is_not_shown():
    student_raises = error("ValueError", "c2VjcmV0IGNvZGU=", [cell_frame(7, 4), cell_frame(3, 2)])
    result = verdict(graded_cell("t", TEST_SOURCE, [student_raises]), {"7"}, {"3": 5, "7": 9}, set())
    assert result["where"] == "hidden"
    assert "c2VjcmV0" not in result["message"]
    assert result["message"].startswith("your code raised ValueError (notebook cell 5, line 2)")


def test_library_frames_do_not_make_a_student_message_the_graders():
    # the student's code passes its text to a library that raises it (torch._assert, numpy.testing)
    via_library = error("AssertionError", "leaked text", [
        cell_frame(7, 4), cell_frame(3, 2), file_frame("/venv/lib/python3.11/site-packages/torch/__init__.py", 9)])
    result = verdict(graded_cell("t", TEST_SOURCE, [via_library]), {"7"}, {"3": 5}, set())
    assert "leaked text" not in result["message"]


def test_grader_messages_are_shown_capped_and_scrubbed_of_hidden_lines():
    helper = str(ROOT / "utils" / "checks.py")
    long = "x should be close: " + "y" * 1000
    result = verdict(graded_cell("t", TEST_SOURCE, [error("AssertionError", long, [cell_frame(7, 4),
                                                                                      file_frame(helper, 50)])]),
                     {"7"}, {}, set())
    assert result["message"].startswith("AssertionError: x should be close") and len(result["message"]) < 320
    secrets = hidden_lines([TEST_SOURCE])
    quoting = error("AssertionError", 'assert value == secret_reference(), "value is not right"', [cell_frame(7, 4)])
    result = verdict(graded_cell("t", TEST_SOURCE, [quoting]), {"7"}, {}, secrets)
    assert "secret_reference" not in result["message"]


def test_hidden_lines_include_the_hidden_tests_package(tmp_path):
    (tmp_path / "hidden_tests").mkdir()
    (tmp_path / "hidden_tests" / "a.py").write_text("def check(x):\n    assert x == reference_value(x)\n")
    assert "assert x == reference_value(x)" in hidden_lines([], root=tmp_path)


def _notebooks():
    """A graded notebook (hidden tests, graded run's outputs) and the submission it came from."""
    answer = nbformat.v4.new_markdown_cell("My answer.", id="ans")
    answer.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "ans", "locked": False,
                                   "points": 2, "schema_version": 3, "task": False}
    plot = nbformat.v4.new_code_cell("fig", id="plot")
    plot.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.plotly.v1+json": {"data": [{"type": "scatter", "y": [1, 2]}], "layout": {}},
        "application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "Figure"})]
    printed = nbformat.v4.new_code_cell("print(In)", id="peek")
    printed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="what the student's own run printed")]
    submitted = nbformat.v4.new_notebook(cells=[printed, graded_cell("t", visible_source(TEST_SOURCE)), answer, plot])
    graded = nbformat.from_dict(submitted)
    graded.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=TEST_SOURCE)]  # the graded kernel's
    graded.cells[1].source = TEST_SOURCE
    graded.cells[1].outputs = [error("AssertionError", "value is not right", [cell_frame(7, 4)])]
    return graded, submitted


GRADES = {"t": {"score": 0.0, "max": 2.0, "pending": False, "extra": 0.0},
          "ans": {"score": 0.0, "max": 2.0, "pending": True, "extra": 0.0}}
SOURCES = {"t": {"source": TEST_SOURCE, "locked": True, "type": "code"},
           "ans": {"source": "model", "locked": False, "type": "markdown"}}


def test_the_page_holds_the_submission_verdicts_and_no_graded_output():
    graded, submitted = _notebooks()
    cells, summary = build_page(graded, submitted, GRADES, SOURCES, {"ans"}, {"t"}, hidden_lines([TEST_SOURCE]))
    text = str(cells)
    assert "secret_reference" not in text and "BEGIN HIDDEN" not in text
    assert cells[0].outputs[0].text == "what the student's own run printed"
    test = cells[1].metadata["course_feedback"]
    assert (test["status"], test["where"], test["points"]) == ("failed", "hidden", "0 / 2")
    assert test["message"] == "AssertionError: value is not right" and cells[1].outputs == []
    answer = cells[2].metadata["course_feedback"]
    assert (answer["status"], answer["points"]) == ("pending", "pending / 2")
    assert summary["auto_score"] == "0" and "pending" in summary["written"] and "0 / 2" not in summary["written"]


def test_a_graded_answer_shows_its_score():
    graded, submitted = _notebooks()
    grades = {**GRADES, "ans": {"score": 1.5, "max": 2.0, "pending": False, "extra": 0.0}}
    cells, summary = build_page(graded, submitted, grades, SOURCES, {"ans"}, {"t"}, set())
    assert cells[2].metadata["course_feedback"]["points"] == "1.5 / 2" and summary["written"] == "written answers: 1.5 / 2"


def test_plotly_figures_become_offline_html_and_live_widgets_go():
    graded, submitted = _notebooks()
    cells, summary = build_page(graded, submitted, GRADES, SOURCES, {"ans"}, {"t"}, set())
    data = cells[3].outputs[0].data
    assert summary["plotly"] and set(data) == {"text/html"} and "Plotly.newPlot" in data["text/html"]
    assert "cdn" not in data["text/html"].lower()


def test_formulas_become_mathml():
    assert mathml(r"\frac{1}{n}").startswith("<math") and "<mfrac>" in mathml(r"\frac{1}{n}")
    assert 'display="block"' in MathMLRenderer(escape=False).block_math(r"\sum_i x_i")


# -- rubrics, both ways, on the course's own notebooks -----------------------------------------

ASSIGNMENTS = ("autodiff", "rosenbrock", "optimizers")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_written_answer_has_a_rubric_that_no_student_version_holds(assignment):
    source = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = {nbcells.grade_id(c): c.source for c in source.cells if nbcells.is_written_answer(c)}
    found = rubrics(source)
    assert answers and set(found) == set(answers)
    released = (ROOT / "release" / assignment / f"{assignment}.ipynb").read_text()
    criteria = [c.source for c in source.cells if rubric_of(c)]
    for text in [*answers.values(), *criteria]:
        assert text.splitlines()[0] not in released
    stripped, _ = StripRubrics().preprocess(nbformat.from_dict(source), {})
    assert not [c for c in stripped.cells if rubric_of(c)]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_graders_notebook_gets_each_rubric_below_its_answer(assignment):
    source = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    student = nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    resources = {"nbgrader": {"assignment": assignment, "notebook": assignment}}
    graders, _ = InsertRubrics().preprocess(student, resources)
    for answer_id, text in rubrics(source).items():
        index = next(i for i, c in enumerate(graders.cells)
                     if nbcells.grade_id(c) == answer_id)
        assert graders.cells[index + 1].source == text
        assert "Model answer" in text and "Marking criteria" in text


def test_a_rubric_naming_no_answer_is_an_error_that_says_which():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("criteria")])
    nb.cells[0].metadata["course"] = {"rubric": "answer_9"}
    with pytest.raises(ValueError, match="answer_9"):
        rubrics(nb)


def test_an_error_without_frames_is_named_by_type_unless_the_machinery_raised_it():
    forged = nbformat.v4.new_output("error", ename="AssertionError", evalue="anything at all",
                                    traceback=["AssertionError: anything at all"])
    result = verdict(graded_cell("t", TEST_SOURCE, [forged]), {"7"}, {}, set())
    assert "anything" not in result["message"] and result["message"] == "AssertionError (no traceback)"
    timeout = nbformat.v4.new_output("error", ename="CellTimeoutError", evalue="",
                                     traceback=["\x1b[0;31mCellTimeoutError\x1b[0m: No reply from kernel before timeout"])
    result = verdict(graded_cell("t", TEST_SOURCE, [timeout]), {"7"}, {}, set())
    assert result["message"] == "CellTimeoutError: No reply from kernel before timeout"


def test_pages_share_what_is_the_same_and_show_what_differs():
    """Highlighted code and converted markdown are remembered by their text (a class's pages share
    all but the students' own cells): a page made from the remembered pieces is the page made anew,
    and another student's code or answer shows as theirs."""
    from course.plugins.feedback_page import FeedbackExporter, _Highlight

    def page(code: str, answer: str) -> str:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code, id="code"),
                                             nbformat.v4.new_markdown_cell(answer, id="answer")])
        nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
        return FeedbackExporter().from_notebook_node(nb)[0]

    first = page("total = sum(range(10))", "The loss falls as $\\frac{1}{n}$.")
    _Highlight.remembered.seen.clear()
    FeedbackExporter._markdown.seen.clear()
    assert page("total = sum(range(10))", "The loss falls as $\\frac{1}{n}$.") == first
    assert page("total = sum(range(10))", "The loss falls as $\\frac{1}{n}$.") == first  # from what was remembered
    other = page("total = max(range(7))", "It rises.")
    assert "max" in other and "It rises." in other and "frac" not in other and "<mfrac>" not in other


def test_warming_up_on_the_release_leaves_a_page_only_the_students_own_cells_to_convert(tmp_path):
    """``course grade`` renders the release while the first submission runs (feedback.warm_up):
    a graded page of the same notebook then converts only what the student wrote, and is the
    page made without warming up."""
    from course.config import Layout
    from course.plugins import feedback
    from course.plugins.feedback_page import FeedbackExporter, _Highlight

    released = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Task 1\nCompute $\\sum_i x_i$.", id="task"),
        nbformat.v4.new_code_cell("import torch\nx = torch.arange(4.0)", id="given"),
        nbformat.v4.new_code_cell("# YOUR CODE HERE\nraise NotImplementedError()", id="answer")])
    released.metadata["language_info"] = {"name": "python", "version": "3.11"}  # as nbgrader writes it
    (tmp_path / "release" / "toy").mkdir(parents=True)
    nbformat.write(released, tmp_path / "release" / "toy" / "toy.ipynb")

    def graded_page() -> str:
        graded = nbformat.from_dict(released)
        graded.cells[2].source = "total = x.sum()"
        graded.metadata["language_info"] = feedback.GRADED_LANGUAGE | {"version": "3.11.7"}
        return feedback._exporter().from_notebook_node(graded, {"metadata": {"name": "toy", "path": "."}})[0]

    def forget() -> None:
        _Highlight.remembered.seen.clear()
        FeedbackExporter._markdown.seen.clear()

    forget()
    cold = graded_page()
    forget()
    feedback.warm_up("toy", Layout(tmp_path))
    before = set(_Highlight.remembered.seen), set(FeedbackExporter._markdown.seen)
    assert graded_page() == cold
    added = set(_Highlight.remembered.seen) - before[0], set(FeedbackExporter._markdown.seen) - before[1]
    assert [key[-1] for key in added[0]] == ["total = x.sum()"] and not added[1]
