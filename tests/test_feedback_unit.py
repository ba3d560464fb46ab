"""WithholdHiddenTests removes hidden tests, and the tracebacks that quote them, from feedback."""

import nbformat

from course.feedback import WITHHELD, WITHHELD_LINE, WithholdHiddenTests


def grade_cell(source, outputs=()):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "locked": True, "points": 1,
                                 "schema_version": 3, "solution": False, "task": False}
    cell.outputs = list(outputs)
    return cell


def error(traceback):
    return nbformat.v4.new_output("error", ename="AssertionError", evalue="w is not correct", traceback=traceback)


def test_hidden_region_and_its_traceback_are_removed():
    source = "check(w)\n### BEGIN HIDDEN TESTS\nassert secret(w) == 42\n### END HIDDEN TESTS"
    cell = grade_cell(source, [error(["----> 3 assert secret(w) == 42", "AssertionError: w is not correct"])])
    out, _ = WithholdHiddenTests().preprocess_cell(cell, {}, 0)
    assert out.source == "check(w)"
    assert out.outputs[0].traceback == ["AssertionError: w is not correct", WITHHELD]
    assert "secret" not in str(out)


def test_cells_without_hidden_tests_keep_their_traceback():
    tb = ["----> 1 check(w)", "AssertionError: w is not correct"]
    cell = grade_cell("check(w)", [error(tb)])
    out, _ = WithholdHiddenTests().preprocess_cell(cell, {}, 0)
    assert out.outputs[0].traceback == tb and out.source == "check(w)"


def test_student_cells_are_left_alone():
    cell = nbformat.v4.new_code_cell("x = 1  # BEGIN HIDDEN TESTS is just text here")
    out, _ = WithholdHiddenTests().preprocess_cell(cell, {}, 0)
    assert out.source == cell.source


def test_hidden_code_printed_by_student_code_is_withheld_everywhere():
    test = grade_cell("check(w)\n### BEGIN HIDDEN TESTS\nassert secret_reference(w) == 42\n### END HIDDEN TESTS")
    peek = nbformat.v4.new_code_cell("print(*In, sep='\\n')")
    peek.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="check(w)\nassert secret_reference(w) == 42\nx = 1\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "'assert secret_reference(w) == 42'"},
                               execution_count=1),
    ]
    nb = nbformat.v4.new_notebook(cells=[test, peek])
    out, _ = WithholdHiddenTests().preprocess(nb, {})
    text = str(out)
    assert "secret_reference" not in text
    assert out.cells[1].outputs[0].text == f"check(w)\n{WITHHELD_LINE}\nx = 1\n"
