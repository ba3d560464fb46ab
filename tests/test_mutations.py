"""The mutation suite judges cases as declared, and the course's hidden tests pass it.

Unit tests of the runner use a tiny notebook; the suite itself runs every assignment's
mutations/<assignment>.toml: every correct variant must get full marks and every
plausible mistake must fail exactly the cells it declares.
"""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
import types

import nbformat
import pytest

from course import cells as nbcells
from course.commands import mutations
from course.config import CourseError


def _cell(source, grade_id, solution=False, test=False, points=1):
    cell = nbformat.v4.new_code_cell(textwrap.dedent(source).strip())
    if solution or test:
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": test, "locked": test,
                                     "points": points if test else None, "schema_version": 3, "task": False}
        if not test:
            del cell.metadata["nbgrader"]["points"]
    return cell


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A course with one notebook: double(x), then total(xs) that uses double, then square(x) that does not."""
    source, cases = tmp_path / "source" / "tiny", tmp_path / "mutations"
    source.mkdir(parents=True)
    cases.mkdir()
    (source / "data.txt").write_text("3")
    nb = nbformat.v4.new_notebook(cells=[
        _cell("import random, sys\nrandom.seed(0)\nSEEN = []\nthree = int(open('data.txt').read())", "setup"),
        _cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "sol_double", solution=True),
        _cell("assert double(three) == 6, 'double(3) should be 6'\nSEEN.append('double')", "test_double", test=True),
        _cell("def total(xs):\n    ### BEGIN SOLUTION\n    return sum(double(x) for x in xs)\n    ### END SOLUTION",
              "sol_total", solution=True),
        _cell("assert total([1, 2]) == 6, 'total([1, 2]) should be 6'", "test_total", test=True),
        _cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION", "sol_square", solution=True),
        _cell("import os, random\nassert square(3) == 9, 'square(3) should be 9'\nassert len(SEEN) < 5, 'SEEN grew'\n"
              "assert os.environ.get('COURSE_NO_PROGRESS') == '1', 'no progress bars while grading'\n"
              "DRAWN = random.random()", "test_square", test=True),
    ])
    nbformat.write(nb, source / "tiny.ipynb")
    monkeypatch.setattr(mutations, "SOURCE", tmp_path / "source")
    monkeypatch.setattr(mutations, "MUTATIONS", cases)
    monkeypatch.setattr(mutations, "check_assignment", lambda name: name)
    return cases / "tiny.toml"


@contextlib.contextmanager
def _tiny_notebook(tiny):
    """The tiny course's notebook, to change in the block; written back after it."""
    path = tiny.parent.parent / "source" / "tiny" / "tiny.ipynb"
    nb = nbformat.read(path, as_version=4)
    yield nb
    nbformat.write(nb, path)


def _write(spec, text):
    spec.write_text(textwrap.dedent(text))


def test_correct_variants_pass_and_mistakes_fail_exactly_their_cells(tiny):
    _write(tiny, '''
        [cases.shift]
        kind = "correct"
        about = "x + x"
        cells.sol_double = "def double(x):\\n    return x + x"
        [cases.triple]
        kind = "mistake"
        about = "3x: fails its own test, and total too since total uses double"
        fails = ["test_double", "test_total"]
        cells.sol_double = "def double(x):\\n    return 3 * x"
        [cases.total_off]
        kind = "mistake"
        about = "forgets the last element"
        fails = ["test_total"]
        cells.sol_total = "def total(xs):\\n    return sum(double(x) for x in xs[:-1])"
        [cases.declared_wrongly]
        kind = "mistake"
        about = "a mistake the test does not see: the verdict says so"
        fails = ["test_double"]
        cells.sol_double = "def double(x):\\n    return 2 * x + 0 * len(SEEN)"
    ''')
    verdicts = {v.case.id: v for v in mutations.run("tiny")}
    assert verdicts["shift"].ok and verdicts["shift"].ran == ("test_double", "test_total")
    assert verdicts["triple"].ok and set(verdicts["triple"].failed) == {"test_double", "test_total"}
    assert "double(3) should be 6" in verdicts["triple"].failed["test_double"]
    assert verdicts["total_off"].ok and verdicts["total_off"].ran == ("test_total",)
    assert not verdicts["declared_wrongly"].ok
    assert "not caught by test_double" in verdicts["declared_wrongly"].explain()
    assert mutations.summary("tiny", list(verdicts.values())).endswith(
        "correct variants full marks 1/1, mistakes caught 2/3")


def test_every_later_cell_that_can_differ_runs_and_no_other(tiny):
    _write(tiny, '''
        [cases.own_only]
        kind = "correct"
        about = "total written differently: square's cells read nothing it changes"
        cells.sol_total = "def total(xs):\\n    return 2 * sum(xs)"
        [cases.grows_seen]
        kind = "mistake"
        about = "changes SEEN in place without binding it: test_square reads SEEN"
        fails = ["test_square"]
        cells.sol_total = "SEEN.extend(range(5))\\ndef total(xs):\\n    return sum(double(x) for x in xs)"
        [cases.reads_seen]
        kind = "correct"
        about = "reads SEEN without changing it"
        cells.sol_total = "print(len(SEEN))\\ndef total(xs):\\n    return sum(map(double, xs))"
        [cases.same_code]
        kind = "correct"
        about = "the reference's code, written again: nothing differs, but its own test runs"
        cells.sol_total = "def total(xs):\\n    return sum(double(x) for x in xs)"
        [cases.draws]
        kind = "correct"
        about = "draws a random number: the process-wide state differs, so every later cell runs until it is back"
        cells.sol_total = "random.random()\\ndef total(xs):\\n    return sum(double(x) for x in xs)"
        [cases.by_name]
        kind = "mistake"
        about = "a test that reads a name through globals().get: changing it makes that test run"
        fails = ["test_square"]
        cells.sol_square = "def square(x):\\n    return x * x\\nSEEN.extend(range(9))"
    ''')
    for skip in (True, False):
        verdicts = {v.case.id: v for v in mutations.run("tiny", skip=skip)}
        assert all(v.ok for v in verdicts.values()), [v.explain() for v in verdicts.values() if not v.ok]
        if skip:
            assert verdicts["own_only"].ran == ("test_total",) and verdicts["reads_seen"].ran == ("test_total",)
            assert verdicts["same_code"].ran == ("test_total",)  # its own test runs even where nothing differs
        else:
            assert verdicts["own_only"].ran == verdicts["same_code"].ran == ("test_total", "test_square")
        assert verdicts["grows_seen"].ran == verdicts["draws"].ran == ("test_total", "test_square")
    assert "COURSE_NO_PROGRESS" not in os.environ, "the suite's environment leaked out of the run"


def test_cell_names_are_read_in_order_and_through_functions():
    names = mutations._scan(textwrap.dedent('''
        import numpy as np
        for i, model in enumerate(models):
            print(i, model, loss)
        loss = 0
        total = loss + bonus
        def f(a, b=default):
            global counter
            counter = a + helper
            return [k for k in range(a) if k > limit]
        model.weight = 1
        seen = globals().get("paths")
    '''))
    assert names.reads == {"enumerate", "models", "print", "loss", "bonus", "default", "model", "globals", "paths"}
    assert names.writes == {"np", "i", "model", "loss", "total", "f", "seen"}
    assert dict((n, (r, w)) for n, r, w in names.bodies)["f"] == ({"counter", "helper", "range", "limit"}, {"counter"})
    assert not names.dynamic and mutations._scan("exec('x = 1')").dynamic
    assert mutations._scan("globals()['x'] = 1").dynamic and mutations._scan("def (:") is None


def test_cases_are_isolated_and_stderr_exit_and_hangs_are_judged(tiny):
    _write(tiny, '''
        [cases.pollutes]
        kind = "mistake"
        about = "changes a global the next case would see without fork (and test_square sees)"
        fails = ["test_square"]
        cells.sol_double = "SEEN.extend(range(100))\\nthree = 3\\ndef double(x):\\n    return 2 * x"
        [cases.clean]
        kind = "correct"
        about = "sees the reference state"
        cells.sol_double = "assert SEEN == [], 'state leaked from another case'\\ndef double(x):\\n    return 2 * x"
        [cases.noisy]
        kind = "mistake"
        about = "prints to stderr inside the tested function, which total calls too"
        fails = ["test_double", "test_total"]
        cells.sol_double = "def double(x):\\n    print('debug', file=sys.stderr)\\n    return 2 * x"
        [cases.exits]
        kind = "mistake"
        about = "exit() is an error in the cell, like in a kernel"
        fails = ["test_double", "test_total"]
        cells.sol_double = "def double(x):\\n    raise SystemExit(1)"
        [cases.kills]
        kind = "mistake"
        about = "ends the process"
        fails = ["test_double"]
        cells.sol_double = "import os\\nos._exit(3)"
        [cases.hangs]
        kind = "mistake"
        about = "never returns"
        fails = ["test_double"]
        cells.sol_double = "while True:\\n    pass"
    ''')
    verdicts = {v.case.id: v for v in mutations.run("tiny", timeout=5)}
    assert verdicts["pollutes"].ok and verdicts["clean"].ok
    assert verdicts["noisy"].ok and "stderr" in verdicts["noisy"].failed["test_double"]
    assert verdicts["exits"].ok and "SystemExit" in verdicts["exits"].failed["test_double"]
    assert "ended the process" in verdicts["kills"].error and not verdicts["kills"].ok
    assert "did not finish within 5 s" in verdicts["hangs"].error


@pytest.mark.parametrize("spec, message", [
    ('[cases.a]\nkind = "good"\ncells.sol_double = "x = 1"', "kind must be one of"),
    ('[cases.a]\nkind = "correct"\nfails = ["test_double"]\ncells.sol_double = "x = 1"', "a correct variant fails no cell"),
    ('[cases.a]\nkind = "mistake"\ncells.sol_double = "x = 1"', "a mistake fails at least one"),
    ('[cases.a]\nkind = "correct"\ncells.test_double = "pass"', "'test_double', which is not a solution cell"),
    ('[cases.a]\nkind = "mistake"\nfails = ["sol_total"]\ncells.sol_double = "x = 1"', "'sol_total', which is not a test cell"),
    ('[cases.a]\nkind = "mistake"\nfails = ["test_double"]\nweakness = "style"\ncells.sol_double = "x = 1"', "weakness must be"),
    ("[cases.a\n", r"expected \[cases.<id>\] tables"),
    ('[cases.a]\nkind = "mistake"\nfails = ["test_double"]\nthrough = "test_total"\ncells.sol_double = "x = 1"',
     "through is no longer needed"),
    ('[cases.a]\nkind = "mistake"\nfails = ["test_double"]\ndiagnose = "x"\ncells.sol_double = "x = 1"',
     "unknown keys diagnose"),
    ('[cases.a]\nkind = "correct"\ndiagnosis = "x"\ncells.sol_double = "def double(x):\\n    return x + x"',
     "only a mistake has a diagnosis"),
])
def test_bad_case_files_say_what_is_wrong(tiny, spec, message):
    tiny.write_text(spec)
    with pytest.raises(CourseError, match=message):
        mutations.run("tiny")


def test_a_failure_knows_whether_a_visible_line_or_a_hidden_test_raised_it(tiny):
    with _tiny_notebook(tiny) as nb:
        test_total = next(c for c in nb.cells if nbcells.grade_id(c) == "test_total")
        test_total.source = ("assert total([]) == 0, 'the total of nothing is 0'\n### BEGIN HIDDEN TESTS\n"
                             "assert total([5]) == 10, 'hidden'\n### END HIDDEN TESTS\n" + test_total.source)
    _write(tiny, '''
        [cases.visible]
        kind = "mistake"
        fails = ["test_total"]
        diagnosis = "total starts at one"
        cells.sol_total = "def total(xs):\\n    return 1"
        [cases.hidden_then_visible]
        kind = "mistake"
        fails = ["test_total"]
        cells.sol_total = "def total(xs):\\n    return 7 if xs else 0"
        [cases.hidden_only]
        kind = "mistake"
        fails = ["test_total"]
        cells.sol_total = "def total(xs):\\n    return 6 if xs else 0"
    ''')
    verdicts = {v.case.id: v for v in mutations.run("tiny", timeout=10, released=True)}
    assert all(v.ok for v in verdicts.values()), [v.explain() for v in verdicts.values()]
    assert verdicts["visible"].visible == ("test_total",) and verdicts["visible"].released == {}
    assert verdicts["visible"].case.diagnosis == "total starts at one"
    hidden, both = verdicts["hidden_only"], verdicts["hidden_then_visible"]
    assert hidden.visible == both.visible == () and "hidden" in hidden.failed["test_total"] == both.failed["test_total"]
    assert hidden.released == {} and "total([1, 2]) should be 6" in both.released["test_total"]


def test_a_name_a_test_puts_back_through_globals_no_longer_makes_later_cells_run(tiny):
    """Hidden tests put the course's reference versions of earlier exercises into the namespace through
    ``globals()`` (hidden_tests/*.py: references_before): no scan of the source sees it, the digests do."""
    with _tiny_notebook(tiny) as nb:
        nb.cells[0].source += "\ndef _reference(x):\n    return 2 * x\ndef put_back(namespace):\n    namespace['double'] = _reference"
        test_square = next(c for c in nb.cells if nbcells.grade_id(c) == "test_square")  # reads nothing of double
        test_square.source = "put_back(globals())  # at the top, as references_before\n" + test_square.source
        nb.cells.append(_cell("assert double(4) == 8, 'double(4) should be 8'", "test_last", test=True))
    _write(tiny, '''
        [cases.triple]
        kind = "mistake"
        fails = ["test_double", "test_total"]
        cells.sol_double = "def double(x):\\n    return 3 * x"
    ''')
    skipping, every = (mutations.run("tiny", skip=skip)[0] for skip in (True, False))
    assert skipping.ok and every.ok, (skipping.explain(), every.explain())
    assert "test_last" in every.ran and "test_last" not in skipping.ran, skipping.ran


def _hidden_tests_of_tiny(monkeypatch, reference_double: str) -> None:
    """A hidden-tests module for the tiny notebook, as hidden_tests/<assignment>.py: a test of
    ``double`` that puts ``Reference.double`` in the notebook when it fails (hidden_tests.common.fallback)."""
    module = types.ModuleType("hidden_tests.tiny")
    exec(textwrap.dedent(f'''
        class Reference:
            @staticmethod
            def double(x):
                return {reference_double}

        def test_double(double, namespace):
            if double(3) != 6:
                namespace["double"] = Reference.double
                raise AssertionError("double(3) should be 6")
    '''), module.__dict__)
    monkeypatch.setitem(sys.modules, "hidden_tests.tiny", module)


def test_a_reference_a_hidden_test_puts_back_counts_as_the_solution(tiny, monkeypatch):
    """When a hidden test puts the course's reference version in place of a student's failed function,
    the later cells compute what the solution's would: the case stops there. Every later cell still runs
    with skip=False, and the verdicts agree."""
    _hidden_tests_of_tiny(monkeypatch, "x + x")
    with _tiny_notebook(tiny) as nb:
        test_double = next(c for c in nb.cells if nbcells.grade_id(c) == "test_double")
        test_double.source = ("from hidden_tests.tiny import test_double as _check\n_check(double, globals())\n"
                              + test_double.source)
        nb.cells.append(_cell("assert double(4) == 8, 'double(4) should be 8'", "test_last", test=True))
    _write(tiny, '''
        [cases.total_off]
        kind = "mistake"
        about = "the solution's double, from before the fork, is the course's as much as the reference version is"
        fails = ["test_total"]
        cells.sol_total = "def total(xs):\\n    return sum(double(x) for x in xs[:-1])"
        [cases.triple]
        kind = "mistake"
        about = "3x: its test puts the reference back, so total (which calls double) is right again"
        fails = ["test_double"]
        cells.sol_double = "def double(x):\\n    return 3 * x"
        [cases.shift]
        kind = "correct"
        about = "x + x, the student's own: the cells after it run with it"
        cells.sol_double = "def double(x):\\n    return x + x"
    ''')
    skipping, every = ({v.case.id: v for v in mutations.run("tiny", skip=skip)} for skip in (True, False))
    assert all(v.ok for v in [*skipping.values(), *every.values()]), [v.explain() for v in skipping.values()]
    assert "test_total" not in skipping["triple"].ran, skipping["triple"].ran
    assert "test_total" in every["triple"].ran
    assert skipping["shift"].ran == ("test_double", "test_total", "test_square", "test_last"), skipping["shift"].ran
    assert skipping["total_off"].ran == ("test_total",), skipping["total_off"].ran


def test_a_reference_version_that_fails_a_cell_stops_the_suite(tiny, monkeypatch):
    """The recorder runs the notebook with the references in place of the solutions: one that would
    fail a later cell after a hidden test put it back is named, instead of hiding a cascade."""
    _hidden_tests_of_tiny(monkeypatch, "3 * x")
    _write(tiny, '[cases.a]\nkind = "correct"\ncells.sol_square = "def square(x):\\n    return x ** 2"\n')
    with pytest.raises(CourseError, match=r"reference versions \(double.*test_double.*double\(3\) should be 6"):
        mutations.run("tiny")


def test_a_cell_that_starts_from_the_course_seed_puts_a_case_back_in_step(tiny):
    """A case that drew a random number leaves the generators where the reference's did not; a later
    cell whose first statement is seed_everything() starts from the same state either way, so the
    case stops there when nothing else differs (and runs every later cell with skip=False)."""
    with _tiny_notebook(tiny) as nb:
        nb.cells[0].source += "\ndef seed_everything(seed=0):\n    random.seed(seed)"
        at = next(i for i, c in enumerate(nb.cells) if nbcells.grade_id(c) == "test_total") + 1
        nb.cells.insert(at, nbformat.v4.new_code_cell("seed_everything()\nLUCKY = random.random()"))
    _write(tiny, '''
        [cases.draws]
        kind = "correct"
        about = "draws a random number: the generators differ until a cell starts from the seed"
        cells.sol_total = "random.random()\\ndef total(xs):\\n    return sum(double(x) for x in xs)"
    ''')
    skipping, every = (mutations.run("tiny", skip=skip)[0] for skip in (True, False))
    assert skipping.ok and every.ok, (skipping.explain(), every.explain())
    assert skipping.ran == ("test_total",) and every.ran == ("test_total", "test_square"), (skipping.ran, every.ran)
    assert skipping.cells_run == 2, skipping.cells_run  # its own cell and test; not the cell that seeds
    assert mutations._scan("seed_everything()\nx = 1").reseeds and mutations._scan("g = utils.seed_everything(3)").reseeds
    assert not mutations._scan("x = 1\nseed_everything()").reseeds


def test_demonstration_cells_are_left_out_with_the_generators_where_the_reference_left_them(tiny):
    """A demonstration cell (it sizes a run with demo_size: utils/quick.py) makes nothing a graded cell
    reads, so a case leaves it out, even one that changes what it calls, and sets the random generators
    to where the reference's run of it left them: the cells after it stay in step and are not run."""
    with _tiny_notebook(tiny) as nb:
        nb.cells[0].source += "\ndef demo_size(full, quick):\n    return quick"
        at = next(i for i, c in enumerate(nb.cells) if nbcells.grade_id(c) == "test_total") + 1
        nb.cells.insert(at, nbformat.v4.new_code_cell(
            "SHOWN = [total([i]) + random.random() for i in range(demo_size(30, quick=3))]"))
    assert mutations.demonstration_cells(mutations.notebook_cells("tiny")) == {at}
    _write(tiny, '''
        [cases.total_off]
        kind = "mistake"
        fails = ["test_total"]
        cells.sol_total = "def total(xs):\\n    return sum(double(x) for x in xs[:-1])"
        [cases.breaks_the_demo]
        kind = "correct"
        about = "a demonstration that fails costs nothing: no test cell reads what it makes"
        cells.sol_total = "def total(xs):\\n    if xs == [0]:\\n        raise ValueError('zero')\\n    return sum(map(double, xs))"
    ''')
    for skip in (True, False):
        verdicts = {v.case.id: v for v in mutations.run("tiny", skip=skip)}
        assert all(v.ok for v in verdicts.values()), [v.explain() for v in verdicts.values()]
        assert ("test_square" in verdicts["total_off"].ran) is not skip, verdicts["total_off"].ran
    left_out, every = (mutations.run("tiny", only=["total_off"], skip=skip)[0].cells_run for skip in (True, False))
    assert left_out < every


def test_a_broken_reference_notebook_is_reported(tiny):
    _write(tiny, '[cases.a]\nkind = "correct"\ncells.sol_double = "def double(x):\\n    return 2 * x"\n')
    (tiny.parent.parent / "source" / "tiny" / "data.txt").write_text("4")
    with pytest.raises(CourseError, match="fails in test_double: AssertionError: double.3. should be 6"):
        mutations.run("tiny")


def test_coverage_counts_variants_per_test_cell(tiny):
    _write(tiny, '''
        [cases.a]
        kind = "correct"
        cells.sol_total = "def total(xs):\\n    return 2 * sum(xs)"
        [cases.b]
        kind = "mistake"
        fails = ["test_double", "test_total"]
        cells.sol_double = "def double(x):\\n    return x"
    ''')
    assert mutations.coverage("tiny") == {"test_double": (0, 1), "test_total": (1, 1), "test_square": (0, 0)}


# ---- the course's own suites ------------------------------------------------------------

SUITES = [pytest.param(name, marks=pytest.mark.xdist_group(f"mutations-{name}"), id=name)
          for name in mutations.assignments_with_cases()]
MIN_CORRECT, MIN_MISTAKES = 3, 5


@pytest.mark.parametrize("assignment", SUITES)
def test_every_case_and_sample_is_judged_as_declared(assignment):
    """The cases of mutations/<assignment>.toml, and the sample submissions the suite can judge in-process
    (``sample_cases``: tests/test_grading.py grades the others, and a few of these, end to end)."""
    cases = mutations.sample_cases(assignment)
    assert len(cases) >= 5, [c.id for c in cases]
    verdicts = mutations.run(assignment, cases=mutations.load(assignment) + cases)
    wrong = [v.explain() for v in verdicts if not v.ok]
    assert not wrong, f"{mutations.summary(assignment, verdicts)}\n" + "\n".join(wrong)


@pytest.mark.parametrize("assignment", SUITES)
def test_every_graded_cell_has_enough_cases(assignment):
    graded = {}
    for path in (mutations.SOURCE / assignment).glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if nbcells.is_test(cell):
                graded[nbcells.grade_id(cell)] = nbcells.points(cell) or nbcells.bonus(cell) or 0
    counts = mutations.coverage(assignment)
    thin = {cell: counts.get(cell, (0, 0)) for cell, points in graded.items()
            if points and (counts.get(cell, (0, 0))[0] < MIN_CORRECT or counts.get(cell, (0, 0))[1] < MIN_MISTAKES)}
    assert not thin, f"graded cells with fewer than {MIN_CORRECT} correct variants or {MIN_MISTAKES} mistakes: {thin}"


def test_cases_run_under_two_student_ids_one_reference_pass_each(tiny, monkeypatch):
    """Every hidden test meets two variants: each case runs under the id its own id hashes to,
    and the child sees that id as the grader's (utils/variant.py reads COURSE_STUDENT_ID)."""
    ids = ("student-a", "student-b")
    monkeypatch.setattr(mutations, "suite_ids", lambda assignment: ids)
    names = [f"case{n}" for n in range(20)]
    first = next(n for n in names if mutations.id_of(n, ids) == ids[0])
    second = next(n for n in names if mutations.id_of(n, ids) == ids[1])
    assert mutations.id_of(first, ids) == mutations.id_of(first, ids)  # stable
    cases = "".join(f'''
        [cases.{name}]
        kind = "mistake"
        about = "reports the id it runs under"
        fails = ["test_double", "test_total"]
        cells.sol_double = "import os\\ndef double(x):\\n    raise AssertionError('as ' + os.environ['COURSE_STUDENT_ID'])"
    ''' for name in (first, second))
    _write(tiny, cases)
    verdicts = {v.case.id: v for v in mutations.run("tiny")}
    for name, student in ((first, ids[0]), (second, ids[1])):
        assert verdicts[name].ok and verdicts[name].student == student
        assert verdicts[name].failed["test_double"] == f"AssertionError: as {student}"
    assert "[2 student ids: student-a, student-b]" in mutations.summary("tiny", list(verdicts.values()))


@pytest.mark.xdist_group("mutations-autodiff")
def test_with_variants_off_the_cases_of_the_variant_exercises_are_judged_as_declared():
    """Variants off (course.toml [variants] off): everyone has the default numbers. The cases of the
    exercises that read the student's numbers keep their verdicts, except the mistakes that run with
    the default numbers, which are then right (``fails_with_variants_off``). autodiff here, the
    cheapest; ``course mutations --variants-off`` runs every assignment (README)."""
    cases = mutations.reading_variants("autodiff")
    assert {g for c in cases for g in c.cells} == {"autodiff_1_1", "autodiff_1_5"}
    verdicts = mutations.run("autodiff", only=[c.id for c in cases], variants_off=True)
    wrong = [v.explain() for v in verdicts if not v.ok]
    assert not wrong, "\n".join(wrong)
    defaults = [v for v in verdicts if v.case.fails_with_variants_off == ()]
    assert len(defaults) >= 2 and not any(v.failed for v in defaults), [v.failed for v in defaults]
    assert all(v.case.fails for v in defaults)  # with variants on, the same code is a mistake
