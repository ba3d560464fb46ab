"""Per-student variants: one function computes them (utils/variant.py), the grader gives the kernel
the submitting student's id and never the typed one, and a notebook typed with another student's
id is flagged for review (course/variants.py, course/engine/prepare.py). All cheap: no grading run
(tests/test_grading.py grades the copied sample; tests/test_mutations.py runs the suite under two ids).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from course import config, variants
from course.commands import mutations, samples
from course.config import Limits, VariantSettings, settings
from course.engine import guards, prepare, worker
from course.engine.jobs import Job
from course.plugins import colab
from utils import handin
from utils import variant as numbers

ENV = (numbers.GRADER_ID, numbers.SALT, numbers.OFF)
NONE = "no-variants"  # an assignment name without variants


@pytest.fixture(autouse=True)
def no_grader_environment(monkeypatch):
    """A student's own run: no id, salt or switch from a grader (the tests set them where they need them)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def _notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_the_variant_depends_only_on_salt_assignment_and_normalised_id():
    one = numbers.compute("rosenbrock", "s1234567", "salt")
    assert numbers.compute("rosenbrock", " S1234 567 ", "salt") == one  # whitespace and case do not count
    assert one.numbers in numbers.CHOICES["rosenbrock"] and one.numbers != numbers.DEFAULTS["rosenbrock"]
    ids = [f"student{n}" for n in range(60)]
    under = {salt: [numbers.choose("rosenbrock", i, salt) for i in ids] for salt in ("salt", "another salt")}
    assert under["salt"] != under["another salt"], "a new salt must give (some) students other numbers"
    assert len(set(under["salt"])) > len(numbers.CHOICES["rosenbrock"]) // 2, "the ids spread over the choices"
    # The same in a fresh interpreter: SHA-256, not Python's per-process string hash.
    code = "from utils.variant import choose; print([choose('rosenbrock', f'student{n}', 'salt') for n in range(60)])"
    fresh = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"})
    assert json.loads(fresh.stdout) == under["salt"]


def test_every_choice_keeps_the_lesson_and_none_is_the_default():
    for assignment, choices in numbers.CHOICES.items():
        assert numbers.DEFAULTS[assignment] not in choices, f"{assignment}: the default must be no student's variant"
        assert len(set(choices)) == len(choices) >= 6
    for choice in numbers.CHOICES["rosenbrock"]:  # the curved part of the valley, a rate Adam handles
        assert 0.4 <= abs(choice.start[0]) <= 1.5 and -1.0 <= choice.start[1] <= 2.0 and 0.05 <= choice.lr <= 0.2
    for choice in numbers.CHOICES["autodiff"]:  # f rises towards its peak at 5; sigma'' takes both signs
        assert 0 < choice.point < 5 and -2 < choice.sigmoid_point < 2
    assert len({c.sigmoid_point > 0 for c in numbers.CHOICES["autodiff"]}) == 2
    for choice in numbers.CHOICES["mnist"]:  # smooths the jumps away, keeps most of a 250-batch epoch to see
        assert isinstance(choice.window, int) and 15 <= choice.window <= 45
    # 3,200 digits inside the training split without network (80 % of the 10,000 test digits)
    from utils.mnist import FALLBACK_TRAIN_FRACTION

    # (and none of them the last 3,200: taking those must stay a mistake for everyone)
    assert all(0 < c.first and c.first + 3200 < FALLBACK_TRAIN_FRACTION * 10_000 for c in numbers.CHOICES["landscape"])


def _race(starts, lrs, betas):
    """Distances to (1, 1) of Adam runs on the banana, one row per (lr, start), in double
    precision, with the course's reference Adam (torch.optim's first step imports 2 s of
    compiler): one parameter tensor holds all starts, as Adam acts elementwise."""
    import torch

    from hidden_tests.optimizers import Reference
    from utils.rosenbrock import rosenbrock

    thetas = [torch.tensor(starts, dtype=torch.float64, requires_grad=True) for _ in lrs]
    adams = [Reference.Adam([t], lr=lr, betas=betas) for t, lr in zip(thetas, lrs)]
    rows = [torch.cat([t.detach() for t in thetas])]
    for _ in range(250):
        for t, adam in zip(thetas, adams):
            adam.zero_grad()
            rosenbrock(t[:, 0], t[:, 1]).sum().backward()
            adam.step()
        rows.append(torch.cat([t.detach() for t in thetas]))
    return (torch.stack(rows, dim=1) - 1.0).norm(dim=2).tolist()


def _settles(distances, most=200):
    """The bonus's rule: the first N <= most after which the run stays within 1e-2 for 50 steps."""
    return next((n for n in range(most + 1) if all(d < 1e-2 for d in distances[n:n + 51])), None)


def test_every_bonus_start_keeps_the_race_a_race():
    """optimizers' bonus from each student's start: the settings of the instructor's claim settle
    within 200 steps after flying through (1, 1)'s neighbourhood first; Adam with its default
    betas settles for no rate; a claim found from the default start holds from none."""
    starts = [c.bonus_start for c in numbers.CHOICES["optimizers"]]
    assert all(x < 0 for x, _ in starts), "every race starts beside the far arm of the valley"
    for distances in _race(starts, [0.1], (0.9, 0.9)):
        settled = _settles(distances)
        assert settled is not None and next(n for n, d in enumerate(distances) if d < 1e-2) < settled
    assert not [d for d in _race(starts, [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0], (0.9, 0.999)) if _settles(d)]
    [default] = _race([numbers.DEFAULTS["optimizers"].bonus_start], [0.1], (0.9, 0.9))
    claim = _settles(default)
    assert not [d for d in _race(starts, [0.1], (0.9, 0.9)) if all(x < 1e-2 for x in d[claim:claim + 51])]


def test_landscape_subset_of_the_default_digits_is_told_so(monkeypatch):
    """Task 0 (hidden_tests/landscape.py): a subset of the first 3,200 digits, normalised or not,
    where the student's own starts elsewhere, is told it kept the default numbers; the own passes."""
    import torch

    from hidden_tests.landscape import test_data
    from utils.mnist import TensorLoader, as_tensors, load_mnist

    monkeypatch.setenv(numbers.GRADER_ID, "bob")
    first = numbers.variant("landscape", "alice").numbers.first
    train = load_mnist(download=False, verbose=False).train
    images, labels = as_tensors(train)
    generator = torch.Generator().manual_seed(0)

    def judge(start, normalised=True):
        x = images[start:start + 3200]
        x = (x - 0.1307) / 0.3081 if normalised else x
        y = labels[start:start + 3200]
        test_data(x, y, TensorLoader(x, y, batch_size=3200), TensorLoader(x, y, batch_size=64, shuffle=True,
                  generator=generator), train, generator, student_id="alice")

    judge(first)
    for normalised in (True, False):
        with pytest.raises(AssertionError, match="from your own index FIRST on, which comes from your student id"):
            judge(0, normalised)
    with pytest.raises(AssertionError, match="subset_images is not correct"):
        judge(first - 64)


def test_the_grader_id_wins_over_the_typed_one(monkeypatch):
    monkeypatch.setenv(numbers.SALT, "salt")
    monkeypatch.setenv(numbers.OFF, "")
    typed = numbers.variant("rosenbrock", "alice")
    assert (typed.student_id, typed.source) == ("alice", "typed")
    monkeypatch.setenv(numbers.GRADER_ID, "bob")
    graded = numbers.variant("rosenbrock", "alice")
    assert (graded.student_id, graded.source) == ("bob", "grader")
    assert graded == numbers.compute("rosenbrock", "bob", "salt", source="grader")
    assert numbers.variant("rosenbrock", "") == graded  # a blank notebook graded: no id typed, no error


def test_variants_off_give_the_default_numbers_for_any_id(monkeypatch, tmp_path):
    monkeypatch.setenv(numbers.OFF, "autodiff,rosenbrock")
    for who in ("alice", "bob", ""):
        off = numbers.variant("rosenbrock", who)
        assert (off.numbers, off.number, off.source) == (numbers.DEFAULTS["rosenbrock"], None, "off")
    monkeypatch.delenv(numbers.OFF)
    toml = tmp_path / "course.toml"  # a student's own run reads the repository's course.toml
    toml.write_text('[variants]\nsalt = "x"\noff = ["rosenbrock"]\n')
    assert numbers.settings(toml) == ("x", frozenset({"rosenbrock"}))
    toml.write_text('[variants]\nsalt = "x"\noff = []\n')
    assert numbers.settings(toml) == ("x", frozenset())
    assert numbers.settings(tmp_path / "missing.toml") == ("", frozenset())


def test_without_an_id_the_notebook_says_what_to_type_where(monkeypatch):
    with pytest.raises(numbers.MissingStudentId, match=r'STUDENT_ID = "s1234567".*run that cell'):
        numbers.variant("rosenbrock", "  ")
    with pytest.raises(KeyError, match=f"no variants are defined for '{NONE}'"):
        numbers.variant(NONE, "alice")


def test_the_kernel_and_the_hidden_test_compute_the_same_variant(tmp_path, monkeypatch):
    """The kernel's environment as the worker builds it, from the Job the parent made: its
    variant is the submitting student's, whatever the notebook typed."""
    cfg = VariantSettings("kernel salt", frozenset())
    job = Job(str(ROOT), "rosenbrock", "bob", "f", True, Limits(), 100, ("rosenbrock",), cfg.kernel_environment())
    job = Job.from_json(job.to_json())
    env = worker._environment(tmp_path, tmp_path, job)
    assert env[numbers.GRADER_ID] == "bob"
    code = "from utils.variant import variant; print(variant('rosenbrock', 'alice').describe())"
    kernel = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**env, "PYTHONPATH": str(ROOT)}).stdout.strip()
    for name in ENV:
        monkeypatch.setenv(name, env[name])
    assert kernel == numbers.variant("rosenbrock", "").describe() == variants.graded("rosenbrock", "bob", cfg)
    assert "'bob'" in kernel


def test_the_typed_id_is_read_without_running_the_notebook():
    nb = _notebook('raise SystemExit("never run")\nSTUDENT_ID = "first"', "x = 1", "STUDENT_ID: str = ' Second '",
                   "STUDENT_ID = (", "def f():\n    STUDENT_ID = 'inner'", "STUDENT_ID = some_function()")
    assert numbers.typed_id(nb) == " Second "
    assert numbers.typed_id(_notebook('STUDENT_ID = ""')) == ""
    assert numbers.typed_id(_notebook("print(1)")) is None


def test_another_students_id_is_flagged_naming_both_and_ones_own_is_not():
    on, off = VariantSettings("s", frozenset()), VariantSettings("s", frozenset({"rosenbrock"}))
    copied = _notebook('STUDENT_ID = "Alice"')
    [flag] = variants.check(copied, "bob", "rosenbrock", on)
    assert flag.startswith(variants.FLAG) and "'alice'" in flag and "'bob'" in flag
    assert variants.check(_notebook('STUDENT_ID = " BOB"'), "bob", "rosenbrock", on) == []
    assert variants.check(_notebook('STUDENT_ID = ""'), "bob", "rosenbrock", on) == []
    assert variants.check(copied, "bob", "rosenbrock", off) == []  # off: every id has the same numbers
    assert variants.check(copied, "bob", NONE, on) == []  # no variants there


def _prepared(tmp_path, student: str, nb):
    """prepare() on a course with ``nb`` handed in by ``student`` for rosenbrock, and its Job."""
    for part in ("source", "release"):
        (tmp_path / part).symlink_to(ROOT / part)
    folder = tmp_path / "submitted" / student / "rosenbrock"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "rosenbrock.ipynb")
    job = Job(str(tmp_path), "rosenbrock", student, "f", True, Limits(), 100, ("rosenbrock",),
              settings().variants.kernel_environment())
    return prepare.prepare(job, str(tmp_path)), job


def test_grading_flags_the_copy_and_gives_the_kernel_the_submitting_students_id(tmp_path):
    """prepare() on a course whose submission bob handed in with alice's id typed in."""
    nb = nbformat.read(ROOT / "release" / "rosenbrock" / "rosenbrock.ipynb", as_version=4)
    [cell] = [c for c in nb.cells if c.get("id") == colab.STUDENT_ID_CELL]
    cell.source = cell.source.replace('STUDENT_ID = ""', 'STUDENT_ID = "alice"')
    prepared, job = _prepared(tmp_path, "bob", nb)
    assert [f for f in prepared.flags if f.startswith(variants.FLAG)] == [
        f"{variants.FLAG}: the notebook's STUDENT_ID is 'alice', it was handed in by 'bob'; graded on the variant "
        "of 'bob'"]
    assert worker._environment(tmp_path, tmp_path, job)[numbers.GRADER_ID] == "bob"


def test_a_deleted_id_cell_is_put_back_empty_and_nothing_is_flagged(tmp_path):
    nb = nbformat.read(ROOT / "release" / "rosenbrock" / "rosenbrock.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.get("id") != colab.STUDENT_ID_CELL]
    assert numbers.typed_id(nb) is None
    prepared, _ = _prepared(tmp_path, "carol", nb)
    graded = nbformat.reads(prepared.notebooks["rosenbrock"], as_version=4)
    assert numbers.typed_id(graded) == "" and not prepared.flags
    assert any("lacked its student-id cell: put back" in note for note in prepared.notes)
    [at] = [i for i, c in enumerate(graded.cells) if numbers.typed_in(c) is not None]
    assert graded.cells[at - 1].metadata.get(colab.MARKER) == "colab-setup"


def test_changing_the_graders_id_in_the_kernel_is_flagged():
    nb = _notebook('import os\nos.environ["COURSE_STUDENT_ID"] = "alice"')
    assert any("student id or variant settings" in f for f in guards.static_scan(nb))
    assert "COURSE_STUDENT_ID" in guards.CAPTURE.format(
        token="t", variant_env=guards.VARIANT_ENV, builtins=(), modules=(), home="/", helpers=(), tests=(), mime="m")


def test_the_release_hands_out_an_empty_id_right_after_the_setup_cell():
    for assignment in numbers.DEFAULTS:
        released = nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
        tags = [c.metadata.get(colab.MARKER) for c in released.cells[:3]]
        assert tags == ["colab-badge", "colab-setup", colab.STUDENT_ID_CELL]
        assert numbers.typed_id(released) == ""
        source = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
        assert numbers.typed_id(source), "the instructor notebook runs with an id of its own"
    for assignment in sorted(set(config.assignments()) - set(numbers.DEFAULTS)):
        released = nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
        assert numbers.typed_id(released) is None  # no variants there: no id cell


def test_the_mutation_suite_runs_under_two_ids_with_different_variants():
    for assignment in numbers.DEFAULTS:
        ids = mutations.suite_ids(assignment)
        cfg = settings().variants
        assert len(ids) == 2
        assert len({numbers.compute(assignment, i, cfg.salt).numbers for i in ids}) == 2
        cases = [c.id for c in mutations.load(assignment)]
        by_id = {i: [c for c in cases if mutations.id_of(c, ids) == i] for i in ids}
        assert all(len(v) >= len(cases) // 4 for v in by_id.values()), "each id judges a good share of the cases"
    assert mutations.suite_ids(NONE) == ("mutation-suite-1",)


# Where each assignment's copied sample typed the numbers of its author: (cell, the code they show).
COPIED = {
    "rosenbrock": ("rosenbrock_b2_plot", lambda n: [f"[{n.start[0]}, {n.start[1]}]", f"lr={n.lr}"]),
    "autodiff": ("autodiff_1_1", lambda n: [f"torch.tensor({n.point}, requires_grad=True)"]),
    # the claim steps_to_settle finds for the instructor's settings from the author's start
    "optimizers": ("optimizers_bonus", lambda n: [f"bonus_steps = {_settles(_race([n.bonus_start], [0.1], (0.9, 0.9))[0])}"]),
    "mnist": ("mnist_2b_plot", lambda n: [f"np.ones({n.window}) / {n.window}"]),
    "landscape": ("landscape_0", lambda n: [f"train_images[{n.first}:{n.first + 3200}]",
                                            f"train_labels[{n.first}:{n.first + 3200}]"]),
}


@pytest.mark.parametrize("assignment", sorted(numbers.DEFAULTS))
def test_the_copied_sample_carries_numbers_that_are_not_its_own(assignment):
    """samples/<assignment>: copied_from_correct typed the numbers of `correct`; they must differ
    from its own variant, or its declared failure would not hold."""
    cfg = settings().variants
    sample = next(s for s in samples.load(assignment) if s.student == "copied_from_correct")
    theirs = numbers.compute(assignment, sample.student_id, cfg.salt).numbers
    own = numbers.compute(assignment, sample.student, cfg.salt).numbers
    assert sample.student_id == "correct" and own != theirs and sample.flags
    cell, shown = COPIED[assignment]
    assert all(text in sample.cells[cell] for text in shown(theirs)), (
        "the copy's numbers are those of `correct` under the course's salt: update them after a new salt")
    content, _ = samples.render(sample, assignment, assignment)
    assert numbers.typed_id(nbformat.reads(content, as_version=4)) == "correct"


def test_the_copied_bonus_claim_does_not_hold_from_the_submitters_start():
    """Two starts differ, but a claim can hold from both: the copied claim of optimizers must not
    hold from the start of the student who handed it in, or the copy would earn the bonus."""
    cfg = settings().variants
    own = numbers.compute("optimizers", "copied_from_correct", cfg.salt).numbers.bonus_start
    [distances] = _race([own], [0.1], (0.9, 0.9))
    claim = _settles(_race([numbers.compute("optimizers", "correct", cfg.salt).numbers.bonus_start], [0.1], (0.9, 0.9))[0])
    assert not all(d < 1e-2 for d in distances[claim:claim + 51])


def test_the_hand_in_check_shows_the_variant_it_used(tmp_path):
    nb = nbformat.read(ROOT / "release" / "rosenbrock" / "rosenbrock.ipynb", as_version=4)
    assert handin._variant_of(nb, "rosenbrock") == ""  # no id yet: the run itself says what to do
    nb.cells[2].source = nb.cells[2].source.replace('STUDENT_ID = ""', 'STUDENT_ID = "alice"')
    shown = handin._variant_of(nb, "rosenbrock")
    assert shown == numbers.variant("rosenbrock", "alice").describe() and "'alice'" in shown
    report = handin.Report(notebook=Path("rosenbrock.ipynb"), expected="rosenbrock.ipynb", variant=shown)
    assert f"Your numbers: {shown}" in report.text()


def test_course_toml_variant_settings_are_checked(tmp_path):
    from course.config import CourseError

    assert VariantSettings.from_table({"salt": "s", "off": ["mnist"]}) == VariantSettings("s", frozenset({"mnist"}))
    with pytest.raises(CourseError, match="off a list of assignment names"):
        VariantSettings.from_table({"off": "mnist"})
    with pytest.raises(CourseError, match="unknown settings colour"):
        VariantSettings.from_table({"colour": 1})
    cfg = VariantSettings("s", frozenset({"b", "a"}))
    assert VariantSettings.from_kernel_environment(cfg.kernel_environment()) == cfg
