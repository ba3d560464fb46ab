"""Likely causes: the normalised signature of a failure, the lookup (one cause, two possible
ones, none), what the recording writes into a graded notebook, what students get (visible
checks only). A graded sample whose page names its cause: tests/test_grading.py."""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import ROOT
from course.commands import causes, mutations
from course.engine.recording import diagnose
from utils import causes as lookup
from utils import handin


# ---- normalisation --------------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", [
    ("AssertionError: dfdx should be 0.24, got 0.5", "AssertionError: dfdx should be -3e-05, got 12"),
    ("AssertionError: got tensor([0.1200, -3.0000e-01])", "AssertionError: got tensor([[1., 2.], [3., 4.]])"),
    ("AssertionError: shape [3, [4, 5]] is wrong", "AssertionError: shape [7] is wrong"),
    ("AssertionError: dtype 'float32' is not allowed", 'AssertionError: dtype "int64" is not allowed'),
    ("torch._C._LinAlgError: singular at 3", "_LinAlgError: singular at 4"),
    ("AssertionError: loss is nan at step 3\nmore text", "AssertionError:   loss is inf at step 40"),
    ("AssertionError", "AssertionError: "),
])
def test_messages_that_differ_only_in_values_share_a_signature(first, second):
    assert lookup.normalise(first) == lookup.normalise(second)


@pytest.mark.parametrize("first, second", [
    ("AssertionError: dfdx should be 0.24", "AssertionError: dsig should be 0.24"),
    ("AssertionError: x is wrong", "ValueError: x is wrong"),
    ("AssertionError: layer fc1 is wrong", "AssertionError: layer fc2 is wrong"),  # names keep their digits
    ("AssertionError: it doesn't move", "AssertionError: it does move"),
])
def test_messages_that_say_different_things_keep_different_signatures(first, second):
    assert lookup.normalise(first) != lookup.normalise(second)


def test_a_signature_keeps_the_words_and_marks_what_it_replaced():
    assert lookup.normalise("AssertionError: x's dtype is 'float32' at 3.5, got tensor([1.])") == \
        "AssertionError: x's dtype is <q> at <n>, got <array>"
    assert len(lookup.normalise("AssertionError: " + "word " * 200)) == lookup.MAX_SIGNATURE


# ---- the table and the lookup -----------------------------------------------------------------------

def _seen(case, diagnosis, cell="t", signature="AssertionError: wrong", visible=False):
    return causes.Seen(case, diagnosis, cell, signature, visible)


def _table(seen):
    return lookup.table({"signatures": causes.lookup_table(seen)})


def test_a_signature_of_one_lone_mistake_names_no_cause():
    table = _table([_seen("a", "A"), _seen("b", "B", signature="AssertionError: other")])
    assert lookup.lookup(table, "t", "AssertionError: wrong") == []
    assert lookup.lookup(table, "t", "AssertionError: other") == []
    # one mistake seen twice in a cell (its graded and its released run) is still one mistake
    assert _table([_seen("a", "A"), _seen("a", "A", visible=True)]) == {}


def test_cases_with_the_same_code_are_one_mistake():
    def case(case_id, code):
        return mutations.Case(case_id, mutations.Kind.MISTAKE, "", {"answer": code}, ("t",), diagnosis="A")

    slip, again, other = case("slip", "x = f(2)\ny = x"), case("slip_cascade", "x = f(2)\n\ny  =  x\n"), \
        case("b", "x = f(3)")
    assert causes.written(slip) == causes.written(again) != causes.written(other)
    copies = [causes.Seen(c.id, "A", "t", "AssertionError: wrong", False, written=causes.written(c)) for c in (slip, again)]
    assert _table(copies) == {}
    both = copies + [causes.Seen("b", "A", "t", "AssertionError: wrong", False, written=causes.written(other))]
    assert _table(both) == {("t", "AssertionError: wrong"): ["A"]}
    # held out, the copies stay together: "b" comes first in the order of ids, the copies (as "slip") second
    derive, judge = causes.split(both)
    assert [s.case for s in derive] == ["b"] and [s.case for s in judge] == ["slip", "slip_cascade"]


def test_a_signature_that_two_mistakes_agree_on_names_their_cause_in_their_cell_only():
    table = _table([_seen("a", "A"), _seen("b", "A"), _seen("c", "A", cell="u")])
    assert lookup.lookup(table, "t", "AssertionError: wrong") == ["A"]
    assert lookup.lookup(table, "u", "AssertionError: wrong") == []  # one mistake in cell u
    assert lookup.lookup(table, "t", "AssertionError: something else") == []
    assert lookup.describe(["A"]) == "Likely cause: A"
    assert lookup.describe([]) == ""


def test_a_lone_mistake_of_another_diagnosis_silences_a_supported_one():
    # the message is shared: A's two mistakes do not show that it means A
    table = _table([_seen("a", "A"), _seen("b", "A"), _seen("c", "A"), _seen("d", "D")])
    assert lookup.lookup(table, "t", "AssertionError: wrong") == []


def test_two_supported_diagnoses_are_possible_causes_three_are_none():
    two = [_seen("c", "C"), _seen("d", "C"), _seen("e", "B"), _seen("f", "B"), _seen("g", "B")]
    assert lookup.lookup(_table(two), "t", "AssertionError: wrong") == ["B", "C"]  # most mistakes first
    tied = [_seen("c", "C"), _seen("d", "C"), _seen("e", "B"), _seen("f", "B")]
    assert lookup.lookup(_table(tied), "t", "AssertionError: wrong") == ["B", "C"]  # a tie: by name
    three = two + [_seen("h", "H"), _seen("i", "H")]
    assert lookup.lookup(_table(three), "t", "AssertionError: wrong") == []
    assert lookup.describe(["B", "C"]) == "Possible causes: B; C"


def test_the_grader_table_keeps_the_evidence_of_a_signature_that_names_nothing():
    entries = causes.lookup_table([_seen("a", "A"), _seen("b", "B"), _seen("c", "B"),
                                   _seen("d", "B", signature="NameError: name <q> is not defined")])
    assert entries == [{"cell": "t", "signature": "AssertionError: wrong", "ambiguous": True, "causes": [],
                        "mistakes": 3, "support": {"A": 1, "B": 2}}]  # a missing name is no signature


def test_a_malformed_or_missing_causes_file_means_no_causes(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "odd.json").write_text(json.dumps({"signatures": [{"cell": "t"}, 3, {"cell": "t", "signature": "s",
                                                                                   "causes": ["ok"]}]}))
    assert lookup.load(tmp_path / "missing.json") == {} and lookup.load(tmp_path / "bad.json") == {}
    assert lookup.load(tmp_path / "odd.json") == {("t", "s"): ["ok"]}


def test_students_get_only_signatures_of_visible_checks_that_name_a_cause(tmp_path, monkeypatch):
    monkeypatch.setattr(mutations, "MUTATIONS", tmp_path)
    monkeypatch.setattr(lookup, "FOLDER", tmp_path / "students")
    seen = [_seen(case, "seen by a visible check", signature="AssertionError: visible <n>", visible=True)
            for case in ("a", "b")]
    seen += [_seen(case, "seen by a hidden test only", signature="AssertionError: hidden secret check <n>")
             for case in ("c", "d")]
    seen += [_seen("e", "a lone one", signature="AssertionError: lone visible <n>", visible=True)]
    grader, student = causes.write("tiny", seen)
    assert {e["signature"] for e in json.loads(grader.read_text())["signatures"]} == \
        {"AssertionError: visible <n>", "AssertionError: hidden secret check <n>", "AssertionError: lone visible <n>"}
    shipped = student.read_text()
    assert json.loads(shipped)["signatures"] == [{"cell": "t", "signature": "AssertionError: visible <n>",
                                                  "ambiguous": False, "causes": ["seen by a visible check"]}]
    assert "hidden" not in shipped and "secret" not in shipped and "lone" not in shipped


@pytest.mark.parametrize("assignment", causes.assignments_with_diagnoses())
def test_the_committed_student_files_hold_visible_failures_only(assignment):
    grader = json.loads(causes.grader_path(assignment).read_text())
    student = json.loads(causes.student_path(assignment).read_text())
    visible = {(f["cell"], f["signature"]) for case in grader["cases"].values() for f in case["failures"] if f["visible"]}
    assert student["signatures"] and {(e["cell"], e["signature"]) for e in student["signatures"]} <= visible
    hidden_code = {line.strip() for line in (ROOT / "hidden_tests" / f"{assignment}.py").read_text().splitlines()
                   if len(line.strip()) > 30}
    assert not [line for line in hidden_code if line in json.dumps(student)]


@pytest.mark.parametrize("assignment", causes.assignments_with_diagnoses())
def test_the_committed_files_state_the_diagnoses_the_cases_state_now(assignment):
    grader, student = causes._documents(assignment, causes.recorded(assignment))
    assert json.loads(causes.grader_path(assignment).read_text()) == grader, \
        f"run `python -m course causes {assignment} --keep-signatures` after editing diagnoses"
    assert json.loads(causes.student_path(assignment).read_text()) == student
    recorded = set(grader["cases"])
    assert recorded and recorded <= {c.id for c in mutations.load(assignment) if c.kind is mutations.Kind.MISTAKE}


def test_held_out_split_is_fixed_and_counts_every_judged_failure():
    seen = [_seen(f"m{i:02d}", "same" if i < 6 else "other", signature=f"AssertionError: s{i % 2}") for i in range(8)]
    derive, judge = causes.split(seen)
    assert [s.case for s in derive] == ["m00", "m02", "m04", "m06"]
    assert [s.case for s in judge] == ["m01", "m03", "m05", "m07"]
    # derived: s0 <- same (m0, m2, m4), other (m6): names nothing; judged: m1, m3, m5 (same) and m7 (other),
    # all with s1, which no derived mistake produced
    assert causes.held_out(seen) == {"right": 0, "right among possible": 0, "wrong": 0, "none": 4}
    seen += [_seen("m08", "same", signature="AssertionError: s1"), _seen("m09", "same", signature="AssertionError: s1")]
    # m8 goes to the derived half, m9 to the judged one: s1 <- same (m8) alone names nothing
    assert causes.held_out(seen) == {"right": 0, "right among possible": 0, "wrong": 0, "none": 5}
    seen += [_seen("m10", "same", signature="AssertionError: s1")]
    # derived: s1 <- same (m8, m10): judged m1, m3, m5, m9 get it right, m7 (other) wrong
    assert causes.held_out(seen) == {"right": 4, "right among possible": 0, "wrong": 1, "none": 0}


def test_one_left_out_looks_each_mistake_up_in_the_table_of_the_others():
    seen = [_seen("a", "A"), _seen("b", "A"), _seen("c", "A"), _seen("d", "B", signature="AssertionError: b"),
            _seen("e", "B", signature="AssertionError: b")]
    # a, b, c: two others agree, right; d, e: one other, none
    assert causes.left_out(seen) == {"right": 3, "right among possible": 0, "wrong": 0, "none": 2}
    seen.append(_seen("f", "F"))
    # now the lone f silences A for a, b and c (shared); f meets three A's that agree: wrong
    assert causes.left_out(seen) == {"right": 0, "right among possible": 0, "wrong": 1, "none": 5}


# ---- at grading and at hand-in -------------------------------------------------------------------------

def _test_cell(grade_id, outputs=(), planted=None):
    cell = nbformat.v4.new_code_cell("check()")
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "grade": True, "solution": False, "locked": True, "points": 1}
    if planted is not None:
        cell.metadata["course"] = {"likely_causes": planted, "other": 1}
    cell.outputs = [nbformat.v4.new_output(**o) for o in outputs]
    return cell


def _error(message):
    return {"output_type": "error", "ename": "AssertionError", "evalue": message, "traceback": []}


def test_the_recording_writes_causes_on_failed_cells_and_removes_planted_ones():
    table = {("t1", "AssertionError: lr is <n>"): ["the rate is fixed"],
             ("t2", "AssertionError: off"): ["one", "two"]}
    nb = nbformat.v4.new_notebook(cells=[
        _test_cell("t1", [_error("lr is 0.3")], planted=["forged"]),
        _test_cell("t2", [_error("off")]),
        _test_cell("t3", [_error("something new")], planted=["forged"]),
        _test_cell("t1", planted=["forged"]),  # passed
    ])
    diagnose(nb, table)
    assert [c.metadata.get("course", {}).get("likely_causes") for c in nb.cells] == \
        [["the rate is fixed"], ["one", "two"], None, None]
    assert nb.cells[0].metadata["course"]["other"] == 1  # the rest of the course metadata stays


def test_an_exercise_not_done_gets_no_cause_whatever_its_message_resembles():
    # A blank notebook's tests fail with messages some mistake also produced (a name that its
    # raising cell never defined): that says nothing about a misconception.
    table = {("t1", "NameError: name <q> is not defined"): ["the graph is freed by backward()"],
             ("t2", "AssertionError: models holds <n> entries"): ["there are five runs"]}
    assert lookup.lookup(table, "t1", "NameError: name 'jacobian' is not defined") == []
    answer = nbformat.v4.new_code_cell("raise NotImplementedError()")
    answer.metadata["nbgrader"] = {"grade_id": "a2", "grade": False, "solution": True, "locked": False}
    answer.outputs = [nbformat.v4.new_output("error", ename="NotImplementedError", evalue="", traceback=[])]
    nb = nbformat.v4.new_notebook(cells=[answer, _test_cell("t2", [_error("models holds 0 entries")])])
    diagnose(nb, table)
    assert "likely_causes" not in nb.cells[1].metadata.get("course", {})
    answer.source, answer.outputs = "def tune():\n    raise NotImplementedError()", []  # raises when called
    diagnose(nb, table)
    assert "likely_causes" not in nb.cells[1].metadata.get("course", {})
    answer.source = "models = []"  # answered (wrongly): the same failure gets its cause
    diagnose(nb, table)
    assert nb.cells[1].metadata["course"]["likely_causes"] == ["there are five runs"]


def test_the_hand_in_check_names_the_cause_of_a_failed_visible_check(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup, "FOLDER", tmp_path / "causes")
    (tmp_path / "causes").mkdir()
    (tmp_path / "causes" / "tiny.json").write_text(json.dumps({"signatures": [
        {"cell": "test_a", "signature": "AssertionError: a is <n>, not positive", "causes": ["a has the wrong sign"]}]}))
    nb = nbformat.v4.new_notebook(cells=[_test_cell("test_a"), _test_cell("test_b")])
    nb.cells[0].source, nb.cells[1].source = "# Test a\ncheck_a()", "# Test b\ncheck_b()"
    nbformat.write(nb, tmp_path / "tiny.ipynb")

    def run(executed, workdir, timeout):  # what a kernel would leave: both checks fail
        executed.cells[0].outputs = [nbformat.v4.new_output(**_error("a is -2.5, not positive"))]
        executed.cells[1].outputs = [nbformat.v4.new_output(**_error("b is 3"))]

    monkeypatch.setattr(handin, "run", run)
    text = handin.check(tmp_path / "tiny.ipynb", write=False).text()
    assert "Test a fails: AssertionError: a is -2.5, not positive\n    Likely cause: a has the wrong sign" in text
    assert "Test b fails: AssertionError: b is 3\n" in text + "\n" and text.count("cause") == 1
