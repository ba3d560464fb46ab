"""Grade an assignment's sample submissions in a copy of the course and check the outcome.

The expected outcome of each sample is written by hand in samples/<assignment>/samples.toml
(which test cells must fail); here the real pipeline (nbgrader via `python -m course`) grades
the samples and every cell's score is compared with that expectation.

Which samples: those the mutation suite cannot judge in-process (no notebook, the blank
release, another student's id, a flag), the correct ones, a cell that raises and one typical
mistake (``end_to_end``). The other samples are typical mistakes whose path through grading
is the same; tests/test_mutations.py judges their declared scores with the mutation suite
(``mutations.sample_cases``), and ``make demo`` grades them all.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, copy_course, course_env, run_course

from course import cells as nbcells
from course import config
from course import gradebook as scores
from course.commands import samples
from course.files import digest
from course.plugins import bonus

# A sample with a known mistake, the mutation case of that mistake, the cell it fails.
LIKELY_CAUSE = {"autodiff": ("history_not_cloned", "v23_not_cloned", "test_2_3_train")}


def end_to_end(assignment: str) -> list[samples.Sample]:
    """The samples graded here through the whole pipeline (see the module's docstring)."""
    from course.commands import mutations

    judged = {case.id.removeprefix(mutations.SAMPLE) for case in mutations.sample_cases(assignment)}
    every = samples.load(assignment)
    mistakes = [s.student for s in every if s.fails and s.solutions == "all" and s.raw is None and not s.flags
                and s.student != "cell_raises"]
    chosen = {"alternative_correct", "cell_raises", *mistakes[:1], *LIKELY_CAUSE.get(assignment, ())[:1]}
    return [s for s in every if s.student not in judged or s.student in chosen]


GRADED = [
    pytest.param(name, marks=pytest.mark.xdist_group(f"grade-{name}"), id=name)
    for name in config.assignments()
    if samples.load(name)
]


@dataclass
class Graded:
    root: Path
    assignment: str
    output: str
    hashes_before: dict[str, str]
    samples: list[samples.Sample]  # those graded (``end_to_end``)

    @property
    def db(self) -> Path:
        return self.root / "gradebook.db"

    def submission(self, student: str) -> Path:
        return self.root / "submitted" / student / self.assignment


_GRADED: dict[str, Graded] = {}  # one graded course per assignment and worker process


@pytest.fixture(scope="module", params=GRADED)
def graded(request, tmp_path_factory) -> Graded:
    # pytest may tear a parametrised module fixture down and set it up again when tests of
    # two assignments interleave on a worker; grading all samples twice costs minutes.
    assignment = request.param
    if assignment in _GRADED:
        return _GRADED[assignment]
    root = copy_course(tmp_path_factory.mktemp(f"course-{assignment}"))
    run_course(root, "samples", assignment)
    students = sorted(p.name for p in (root / "submitted").iterdir())
    before = {s: digest([root / "submitted" / s / assignment]) for s in students}
    chosen = end_to_end(assignment)
    output = run_course(root, "grade", assignment, *[arg for s in chosen for arg in ("--student", s.student)]).stdout
    _GRADED[assignment] = Graded(root, assignment, output, before, chosen)
    return _GRADED[assignment]


def _autograded_cells(assignment: str) -> dict[str, dict[str, float]]:
    """notebook -> {grade id: points} of the autograded test cells (bonus cells count their bonus)."""
    cells = {}
    for path in sorted((ROOT / "source" / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        extra = bonus.bonus_points(path)
        cells[path.stem] = {
            nbcells.grade_id(c): extra.get(nbcells.grade_id(c), nbcells.points(c)) for c in nb.cells if nbcells.is_test(c)
        }
    return cells


def test_every_sample_scores_as_declared(graded):
    tests = {gid: pts for nb in _autograded_cells(graded.assignment).values() for gid, pts in nb.items()}
    for sample in graded.samples:
        if sample.raw is not None:
            continue
        unknown = set(sample.fails) - set(tests)
        assert not unknown, f"{sample.student}: `fails` names cells that are not tests: {unknown}"
        got = scores.cell_scores(graded.assignment, sample.student, db=graded.db)
        expected = {gid: 0.0 if gid in sample.fails else pts for gid, pts in tests.items()}
        actual = {gid: got[gid][0] for gid in tests}
        wrong = {gid: (actual[gid], expected[gid]) for gid in tests if actual[gid] != expected[gid]}
        assert not wrong, f"sample {sample.student!r}: cells scored (got, expected): {wrong}"


def test_a_sample_with_a_known_mistake_is_told_its_likely_cause(graded):
    if graded.assignment not in LIKELY_CAUSE:
        pytest.skip("no sample of this assignment is paired with a mutation case")
    from course.commands import mutations

    student, case, cell = LIKELY_CAUSE[graded.assignment]
    assert next(s for s in graded.samples if s.student == student).fails == (cell,)
    diagnosis = next(c.diagnosis for c in mutations.load(graded.assignment) if c.id == case)
    nb = nbformat.read(graded.root / "autograded" / student / graded.assignment / f"{graded.assignment}.ipynb", 4)
    recorded = {nbcells.grade_id(c): nbcells.course_meta(c).get("likely_causes") for c in nb.cells if nbcells.grade_id(c)}
    assert diagnosis in recorded[cell] and not [gid for gid, found in recorded.items() if found and gid != cell]
    page = (graded.root / "feedback" / student / graded.assignment / f"{graded.assignment}.html").read_text()
    shown = [html.unescape(m) for m in re.findall(r'<div class="course-cause">(.*?)</div>', page, flags=re.S)]
    assert len(shown) == 1 and re.match(r"(Likely cause|Possible causes): ", shown[0]) and diagnosis in shown[0]


def test_blank_sample_fails_every_test_and_correct_passes_all(graded):
    # The generated student version must fail every autograded test; the solution must pass all.
    tests = {gid for nb in _autograded_cells(graded.assignment).values() for gid in nb}
    declared = {s.student: s for s in graded.samples}
    assert set(declared["blank"].fails) == tests
    assert declared["blank"].solutions == "none"
    assert declared["correct"].fails == () and declared["correct"].solutions == "all"


def test_unreadable_submissions_are_reported_and_do_not_stop_grading(graded):
    raw = [s for s in graded.samples if s.raw is not None]
    for sample in raw:
        line = next(l for l in graded.output.splitlines() if l.strip().startswith(sample.student))
        assert "error" in line and sample.error in line, line
        assert scores.read(graded.assignment, sample.student, db=graded.db) is None
    # A sample that declares flags (a copied notebook) is graded and flagged.
    graded_count = sum(1 for l in graded.output.splitlines() if re.fullmatch(r"\s+\S+\s+(graded|flagged)(: .*)?", l))
    assert graded_count == len(graded.samples) - len(raw)


def test_samples_are_flagged_as_declared_and_held(graded):
    """A copied notebook (another student's id typed in) is flagged and held for review; no other
    sample is flagged; every receipt and feedback page of an assignment with variants names the
    variant graded: the submitting student's, whatever id the notebook typed."""
    from course import receipts, review, variants
    from course.config import Layout, settings

    layout = Layout(graded.root)
    cfg = settings().variants
    with open(graded.root / "grades.csv") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle) if r["assignment"] == graded.assignment}
    for sample in (s for s in graded.samples if s.raw is None):
        receipt = receipts.read(layout, sample.student, graded.assignment)
        missing = [p for p in sample.flags if not any(p in f for f in receipt["flags"])]
        assert not missing, f"{sample.student}: flags {receipt['flags']} lack {missing}"
        if not sample.flags:
            assert receipt["flags"] == [], f"{sample.student} was flagged: {receipt['flags']}"
            continue
        assert rows[sample.student]["total"] == "" and rows[sample.student]["review"].startswith("held for review")
        assert review.standing(sample.student, graded.assignment, layout).held
    if not variants.applies(graded.assignment, cfg):
        return
    for student in ("correct", *(s.student for s in graded.samples if s.flags)):
        shown = variants.graded(graded.assignment, student, cfg)
        assert receipts.read(layout, student, graded.assignment)["variant"] == shown and f"'{student}'" in shown
        page = graded.root / "feedback" / student / graded.assignment / f"{graded.assignment}.html"
        assert f"Variant graded (the numbers of your own exercises): {shown}" in _text(page)


def test_grading_never_modifies_a_submission(graded):
    for student, before in graded.hashes_before.items():
        assert digest([graded.submission(student)]) == before, f"submitted/{student} changed"


def _text(html_path: Path) -> str:
    """The visible text of an HTML page: tags removed, entities decoded, whitespace squeezed."""
    page = re.sub(r"<style.*?</style>|<script.*?</script>", " ", html_path.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _hidden_and_visible_lines(assignment: str) -> tuple[list[str], list[str]]:
    hidden, visible = [], []
    for path in (ROOT / "source" / assignment).glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or "BEGIN HIDDEN TESTS" not in cell.source:
                continue
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN HIDDEN TESTS" in line or "END HIDDEN TESTS" in line:
                    inside = "BEGIN" in line
                    continue
                if len(line.strip()) >= 25:  # long enough to be unmistakable
                    (hidden if inside else visible).append(" ".join(line.split()))
    return hidden, visible


def test_feedback_exists_and_shows_no_hidden_test(graded):
    hidden, visible = _hidden_and_visible_lines(graded.assignment)
    assert hidden, "the assignment should have hidden tests"
    pages = sorted((graded.root / "feedback").glob(f"*/{graded.assignment}/*.html"))
    others = [p for p in (graded.root / "feedback").glob(f"*/{graded.assignment}/**/*")
              if p.is_file() and p.suffix != ".html"]
    assert not others, f"feedback/ should hold the pages only, not {others[:3]}"
    students = {s.student for s in graded.samples if s.raw is None}
    assert {p.parts[-3] for p in pages} == students
    for page in pages:
        text = _text(page)
        assert "HIDDEN TESTS" not in text, page
        leaked = [line for line in hidden if line not in visible and line in text]
        assert not leaked, f"{page} shows hidden test code: {leaked[:3]}"
    # The check above can fail: visible test code does appear in the same pages.
    assert any(line in _text(pages[0]) for line in visible)


def test_grades_csv_lists_every_graded_student(graded):
    run_course(graded.root, "scores")  # the table reads the same gradebook
    with open(graded.root / "grades.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["assignment"] == graded.assignment]
    by_student = {r["student"]: r for r in rows}
    correct = scores.read(graded.assignment, "correct", db=graded.db)
    assert float(by_student["correct"]["total"]) == pytest.approx(correct.total)
    # Autograded points and bonus stay apart; unread written answers are pending, not 0.
    assert float(by_student["correct"]["autograded"]) == correct.auto_max
    assert float(by_student["correct"]["bonus"]) == correct.bonus
    assert by_student["correct"]["written_status"] == ("pending" if correct.manual_max else "none")
    assert float(by_student["blank"]["total"]) == 0.0
    assert set(by_student) == {s.student for s in graded.samples if s.raw is None}


def test_grading_again_is_skipped_when_nothing_changed_and_gives_identical_scores(graded):
    """Determinism: the correct sample and a mistake, graded a second time in the sandbox by
    `course verify`, must give scores and flags identical to their receipts (a flaky test is a bug)."""
    chosen = [arg for s in graded.samples for arg in ("--student", s.student)]  # those the fixture graded
    again = run_course(graded.root, "grade", graded.assignment, *chosen).stdout
    assert re.search(r"correct\s+up to date", again), again
    mistakes = [s.student for s in graded.samples
                if s.fails and s.raw is None and s.solutions == "all"][:1]
    assert len(mistakes) == 1
    verified = [arg for student in ("correct", *mistakes) for arg in ("--student", student)]
    proc = run_course(graded.root, "verify", graded.assignment, *verified, check=False)
    assert proc.returncode == 0 and len(re.findall(r"\sidentical: receipt \w{12}", proc.stdout)) == 2, proc.stdout
    receipt = json.loads((graded.root / "autograded" / "correct" / graded.assignment / "receipt.json").read_text())
    autograded = {gid: pts for nb in _autograded_cells(graded.assignment).values() for gid, pts in nb.items()}
    assert {gid: score for nb in receipt["cells"].values() for gid, score in nb.items()} == autograded
    assert receipt["run"]["device"] == "cpu" and receipt["run"]["threads"] == "1"
    test_grading_never_modifies_a_submission(graded)


def test_validate_passes_every_correct_samples_student_side_notebook(graded):
    # What a student's Validate button runs on a finished notebook: the student version
    # (hidden tests stripped) with correct answers must be told it passes, not that it
    # "WILL NOT receive full credit" (a test cell ending in a number reads as partial credit).
    correct = [s.student for s in graded.samples if s.solutions == "all" and not s.fails and s.raw is None]
    assert "correct" in correct
    for student in correct:
        for notebook in sorted(graded.submission(student).glob("*.ipynb")):
            # The student's folder: the released assignment (data files included) with their notebook.
            folder = graded.root / "validate" / student / graded.assignment
            shutil.copytree(graded.root / "release" / graded.assignment, folder, dirs_exist_ok=True)
            shutil.copy(notebook, folder / notebook.name)
            proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(folder / notebook.name)],
                                  cwd=graded.root, env=course_env(graded.root), capture_output=True, text=True,
                                  timeout=600)
            assert "Success! Your notebook passes all the tests." in proc.stdout, (
                f"{student}/{notebook.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")


def test_the_graded_run_is_an_autograding_run_for_the_notebook(graded):
    """The kernel sees NBGRADER_EXECUTION, as under nbgrader: the hand-in cell (which would run
    the notebook again) does nothing, and progress bars stay off."""
    from course.plugins.colab import MARKER

    notebook = next((graded.root / "autograded" / "correct" / graded.assignment).glob("*.ipynb"))
    nb = nbformat.read(notebook, as_version=4)
    hand_in = [c for c in nb.cells if c.cell_type == "code" and MARKER in c.metadata and "hand_in" in c.source]
    assert hand_in and all(c.outputs == [] for c in hand_in)
