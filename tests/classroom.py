"""A one-notebook course for the feedback, rubric and browser tests, graded by the real pipeline.

``fbmini`` has what feedback must handle: a test cell with visible and hidden checks (the
hidden one in the ``hidden_tests`` package, as in the real course), a plotly figure, a
formula, and a written answer with a rubric. Four students hand it in: one correct, one
failing the visible check, one failing the hidden check, and one whose code reads the
hidden test module and tries to get it into its feedback (printed, base64-encoded, and as
an exception message raised while the hidden test runs).
"""

from __future__ import annotations

import base64
import json

import nbformat
from conftest import copy_course, run_course

from course import cells as nbcells

ASSIGNMENT = "fbmini"
# Lines of the hidden test module; none may reach a student.
HIDDEN_MODULE = '''"""Hidden checks of the fbmini test assignment."""


def check_value(value):
    reference_secret_value = 21 * 2  # hidden reference computation
    assert value == reference_secret_value, "value is not right: look at the sheet again"


def check_helper(helper):
    assert helper(3) == 6, "helper(3) should be 6"
'''
SECRET_LINES = ("reference_secret_value = 21 * 2  # hidden reference computation",
                "assert value == reference_secret_value")
FORMULA_MD = "The loss is $L(w) = \\frac{1}{n}\\sum_{i=1}^{n} (w x_i - y_i)^2$ and at the minimum\n\n$$\\nabla L(w) = 0.$$"
MODEL_ANSWER = "The curve rises linearly because the model is the identity map."
CRITERIA = "Full marks for naming the identity map as the reason for the straight line."
VISIBLE_CHECK = 'assert value > 0, "value should be positive"'


def _cell(kind, grade_id, source, grade=False, solution=False, locked=False, points=None):
    cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source, id=grade_id)
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    return cell


def source_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    rubric = nbformat.v4.new_markdown_cell(CRITERIA, id="rubric_answer_text")
    rubric.metadata["course"] = {"rubric": "answer_text"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A tiny assignment\n\n" + FORMULA_MD, id="intro"),
        _cell("code", "answer", "### BEGIN SOLUTION\nvalue = 42\n### END SOLUTION", solution=True),
        _cell("code", "test_value", f"# Test value\n{VISIBLE_CHECK}\n### BEGIN HIDDEN TESTS\n"
                                    "from hidden_tests.fbmini import check_value\ncheck_value(value)\n"
                                    "### END HIDDEN TESTS", grade=True, locked=True, points=2),
        _cell("code", "helper", "### BEGIN SOLUTION\ndef helper(x):\n    return 2 * x\n### END SOLUTION",
              solution=True),
        _cell("code", "test_helper", "# Test helper\nassert callable(helper), \"helper should be a function\"\n"
                                     "### BEGIN HIDDEN TESTS\nfrom hidden_tests.fbmini import check_helper\n"
                                     "check_helper(helper)\n### END HIDDEN TESTS", grade=True, locked=True, points=1),
        _cell("code", "plot", "### BEGIN SOLUTION\nimport plotly.graph_objects as go\n"
                              "fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 2], name=\"identity\"))\n"
                              "fig\n### END SOLUTION", solution=True),
        nbformat.v4.new_markdown_cell("Why is the line straight? (2 points)", id="question"),
        _cell("markdown", "answer_text", MODEL_ANSWER, grade=True, solution=True, points=2),
        rubric,
    ]
    return nb


LEAK = ('import base64, inspect, hidden_tests.fbmini as _h\n'
        '_src = inspect.getsource(_h)\n'
        'print(_src)\nprint(base64.b64encode(_src.encode()).decode())\nprint(*In, sep="\\n")\n'
        'def helper(x):\n    raise ValueError(base64.b64encode(_src.encode()).decode())')
STUDENTS = {
    "good": {},
    "visible_fail": {"answer": "value = -1"},
    "hidden_fail": {"answer": "value = 41"},
    "leaker": {"helper": LEAK},
}


def plotly_output():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 2], name="identity"))
    return nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": json.loads(fig.to_json())})


def submission(released, replaced):
    solutions = {"answer": "value = 42", "helper": "def helper(x):\n    return 2 * x",
                 "plot": "import plotly.graph_objects as go\nfig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 2]))\nfig",
                 "answer_text": "It is straight because the model is the identity."}
    nb = nbformat.from_dict(released)
    for cell in nb.cells:
        gid = nbcells.grade_id(cell)
        if gid in solutions:
            cell.source = replaced.get(gid, solutions[gid])
        if gid == "plot":  # the output the student's own run left in the notebook
            cell.outputs, cell.execution_count = [plotly_output()], 5
    return nb


def build(root, students=tuple(STUDENTS), before_grading=None):
    """Copy the course to ``root``, add fbmini, release it, hand in and grade the students.
    ``before_grading(root, released)``: hand in more, or change settings, before the one grade run."""
    copy_course(root, parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    (root / "hidden_tests").mkdir(exist_ok=True)
    (root / "hidden_tests" / "__init__.py").write_text('"""Hidden tests."""\n')
    (root / "hidden_tests" / f"{ASSIGNMENT}.py").write_text(HIDDEN_MODULE)
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    run_course(root, "release", ASSIGNMENT)
    released = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for student in students:
        replaced = STUDENTS[student]
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(submission(released, replaced), folder / f"{ASSIGNMENT}.ipynb")
    if before_grading:
        before_grading(root, released)
    output = run_course(root, "grade", ASSIGNMENT, timeout=600).stdout
    ungraded = [s for s in students if not (root / "autograded" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()]
    assert not ungraded, f"the classroom's grading failed for {ungraded}:\n{output[-3000:]}"
    return output


def page(root, student):
    return (root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()


def encoded_hidden_module() -> str:
    return base64.b64encode(HIDDEN_MODULE.encode()).decode()
