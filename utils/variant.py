"""Per-student variants: the numbers of an exercise that depend on who hands it in.

Some graded exercises use numbers of the student's own (a start point and a learning rate on
Rosenbrock's function, the points where ``autodiff`` takes its first derivatives, the start of
``optimizers``' race to the minimum, the window that smooths ``mnist``'s loss curves, the first
digit of ``landscape``'s subset), so that a copied notebook carries the wrong numbers. This
module is the one home of those
numbers: the notebook (its first cells), the visible tests and the hidden tests all call
``variant(assignment, typed_id)`` and get the same ``Variant``.

The contract:

* the variant is a pure function of (the course's salt, the assignment, the normalised id):
  SHA-256 of the three, never Python's ``hash`` (which differs between processes), picks one
  of the assignment's ``CHOICES``; the default numbers (``DEFAULTS``, what the exercise used
  before variants) are never one of them, so a student who keeps the default numbers instead
  of their own is told so;
* the id: the one the grader gives through ``COURSE_STUDENT_ID`` (the submitting student's,
  from the submission's folder) wins over the one typed in the notebook; a student's own run
  has no grader id and uses the typed one;
* variants off for an assignment (course.toml ``[variants] off``) give ``DEFAULTS`` for any id;
* where the settings come from: the environment the grader gives the kernel
  (``COURSE_VARIANTS_OFF``: the assignments with variants off, comma separated, "" for none;
  ``COURSE_VARIANT_SALT``), else course.toml in the repository root (JupyterLab and the Colab
  clone both have it), else on with an empty salt.

The threat: the typed id is student input, and the notebook's own ``VARIANT`` is a global any
cell can rebind. The grader never trusts either: it passes the submitting student's id to the
kernel, the hidden tests call ``variant`` themselves, and the grader reads the typed id from
the submitted file (never by running it) only to flag a notebook typed with another
student's id (course/variants.py, course/engine/prepare.py). A notebook that changes
``COURSE_STUDENT_ID`` in its kernel is flagged by the tamper guards (course/engine/guards.py).
"""

from __future__ import annotations

import ast
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

GRADER_ID = "COURSE_STUDENT_ID"  # the submitting student's id, set by the grader
OFF = "COURSE_VARIANTS_OFF"  # the assignments with variants off, as the grader passes them on
ID_NAME = "STUDENT_ID"  # the name the notebook's id cell binds (course/plugins/colab.py)
SALT = "COURSE_VARIANT_SALT"  # the course's salt, as the grader passes it on
SETTINGS_FILE = Path(__file__).resolve().parent.parent / "course.toml"


@dataclass(frozen=True)
class RosenbrockNumbers:
    """B.2: where Adam starts and its learning rate."""

    start: tuple[float, float]
    lr: float


@dataclass(frozen=True)
class AutodiffNumbers:
    """1.1: the point where f' is taken; 1.5: the point of the sigmoid's two derivatives."""

    point: float
    sigmoid_point: float


@dataclass(frozen=True)
class OptimizersNumbers:
    """The bonus: the point the race to the minimum starts from."""

    bonus_start: tuple[float, float]


@dataclass(frozen=True)
class MnistNumbers:
    """2b (the plot): the number of iterations the moving average smooths each model's losses over."""

    window: int


@dataclass(frozen=True)
class LandscapeNumbers:
    """Task 0: the index of the first training digit of the 3,200-digit subset."""

    first: int


Numbers = Union[RosenbrockNumbers, AutodiffNumbers, OptimizersNumbers, MnistNumbers,
                LandscapeNumbers]  # one typed value per assignment with variants

# Each choice keeps the exercise's lesson: for Rosenbrock every start lies in the curved part
# of the valley (|x| about 1, away from the minimum's straight stretch) and every rate lets
# Adam reach the minimum in its 1000 steps while its path still bends along the valley.
DEFAULTS: dict[str, Numbers] = {
    "rosenbrock": RosenbrockNumbers(start=(-1.0, -1.0), lr=0.1),
    "autodiff": AutodiffNumbers(point=2.0, sigmoid_point=0.173),
    "optimizers": OptimizersNumbers(bonus_start=(-1.5, 2.0)),
    "mnist": MnistNumbers(window=25),
    "landscape": LandscapeNumbers(first=0),
}
CHOICES: dict[str, tuple[Numbers, ...]] = {
    "rosenbrock": tuple(RosenbrockNumbers(start, lr)
                        for start in ((-1.5, 1.0), (-1.2, -0.5), (-0.8, 1.5), (-1.0, 2.0), (0.5, -1.0))
                        for lr in (0.08, 0.12, 0.15)),
    # f(x) = 2 / ((5 - x)^2 + 4) rises towards its peak at 5 on every point (f' > 0, not flat);
    # the sigmoid's second derivative changes sign at 0, so both signs are among the points.
    "autodiff": tuple(AutodiffNumbers(point, sigmoid_point) for point in (0.5, 1.0, 1.5, 2.5, 3.0, 3.5)
                      for sigmoid_point in (-0.8, 0.35, 1.2)),
    # Every start lies beside the far arm of the banana's valley (x < 0, f between 6 and 35), so
    # the race still runs the whole curved valley. Run in double precision, from each of them:
    # Adam with lr 0.1 and betas (0.9, 0.9) settles (within 1e-2 of (1, 1) for 50 steps) after
    # 150 to 181 steps, and first flies through that neighbourhood earlier (so "settled" still
    # differs from "passed by"); with its default betas, Adam settles within 200 steps for no
    # learning rate from 0.001 to 3 (400 rates tried), so the betas still have to be tuned.
    # A claim found from one start rarely holds from another (from the default start: from none).
    "optimizers": tuple(OptimizersNumbers(start) for start in ((-1.6, 2.3), (-1.4, 2.2), (-1.2, 0.9), (-1.2, 1.3),
                                                                (-1.2, 1.9), (-1.1, 1.7), (-1.0, 1.3))),
    # One epoch on the shipped digits is 250 batches (1875 on the full split): every window
    # averages the batch-to-batch jumps away (10 still leaves them) and leaves at least 206
    # points, the loss's fall over the first 50 iterations and the models' differences visible,
    # so the six curves can still be compared. The training runs are the same for every window.
    "mnist": tuple(MnistNumbers(window) for window in (15, 20, 30, 35, 40, 45)),
    # Every subset is 3,200 digits of the training split, inside its first 8,000 (all of it
    # without network), so the runs cost what they cost before; on every one the runs keep their
    # lessons (benchmarks/landscape_variants.py runs them all): OneFCNet zig-zags into its bowl,
    # the CNN starts on its plateau, plain SGD lags far behind momentum, RMSProp's first steps
    # jump, a decay of 0.01 beats 0.1, and the averaged model beats the epoch ends it averages.
    # None ends at the split's end (4800 would): the last 3,200 digits are nobody's subset.
    "landscape": tuple(LandscapeNumbers(first) for first in (800, 1600, 2400, 3200, 4000, 4400)),
}


@dataclass(frozen=True)
class Variant:
    """The numbers one student's notebook uses, and where they come from.

    ``source``: "grader" (the id the grader gave), "typed" (the id typed in the notebook) or
    "off" (variants off for this assignment: the default numbers, ``number`` None)."""

    assignment: str
    student_id: str
    source: str
    number: int | None
    numbers: Numbers

    def describe(self) -> str:
        """One line for the notebook, the hand-in check and the feedback page."""
        shown = ", ".join(f"{name} = {value}" for name, value in asdict(self.numbers).items())
        if self.number is None:
            return f"{self.assignment}: variants are off, everyone uses the default numbers ({shown})"
        return f"{self.assignment}: variant {self.number + 1} of {len(CHOICES[self.assignment])} " \
               f"for student id {self.student_id!r} ({shown})"


class MissingStudentId(ValueError):
    """The notebook has no student id yet: what to type, and where."""


def normalise(student_id: str) -> str:
    """The id as the variant sees it: no whitespace, case folded ("S 12 " and "s12" are one id)."""
    return "".join(str(student_id).split()).casefold()


def settings(path: Path = SETTINGS_FILE) -> tuple[str, frozenset[str]]:
    """(salt, the assignments with variants off): from the grader's environment, else course.toml."""
    if SALT in os.environ or OFF in os.environ:
        off = frozenset(a.strip() for a in os.environ.get(OFF, "").split(",") if a.strip())
        return os.environ.get(SALT, ""), off
    try:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        section = tomllib.loads(path.read_text()).get("variants", {})
    except (OSError, ImportError, ValueError):  # no course.toml here: on, no salt
        return "", frozenset()
    return str(section.get("salt", "")), frozenset(map(str, section.get("off", ())))


def choose(assignment: str, student_id: str, salt: str) -> int:
    """The index of the student's choice: SHA-256 of salt, assignment and normalised id."""
    key = "\0".join((salt, assignment, normalise(student_id))).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % len(CHOICES[assignment])


def typed_id(nb) -> str | None:
    """The id a notebook (an nbformat notebook) typed, read without running it: the last string
    bound to STUDENT_ID at the top level of a code cell; None where it binds none. Cells that do
    not parse are skipped. The grader flags on it; the hand-in check shows it."""
    found = None
    for cell in nb.cells:
        typed = typed_in(cell)
        found = typed if typed is not None else found
    return found


def typed_in(cell) -> str | None:
    """The last string one cell binds to STUDENT_ID at its top level, or None."""
    if cell.cell_type != "code" or ID_NAME not in cell.source:
        return None
    try:
        tree = ast.parse(cell.source)
    except (SyntaxError, ValueError):
        return None
    found = None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        value = getattr(node, "value", None)
        if any(isinstance(t, ast.Name) and t.id == ID_NAME for t in targets) \
                and isinstance(value, ast.Constant) and isinstance(value.value, str):
            found = value.value
    return found


def compute(assignment: str, student_id: str, salt: str, off=frozenset(), source: str = "typed") -> Variant:
    """The variant of ``student_id`` under explicit settings (the grader's receipt uses this)."""
    if assignment not in DEFAULTS:
        raise KeyError(f"no variants are defined for {assignment!r}; known: {', '.join(sorted(DEFAULTS))}")
    if assignment in off:
        return Variant(assignment, "", "off", None, DEFAULTS[assignment])
    student_id = normalise(student_id)
    if not student_id:
        raise MissingStudentId(
            "This notebook needs your student id: some exercises use numbers of your own. In the cell "
            'below "Setup" at the top, type your id between the quotes, STUDENT_ID = "s1234567" (the id '
            "the course's roster has for you), then run that cell and the rest of the notebook again.")
    number = choose(assignment, student_id, salt)
    return Variant(assignment, student_id, source, number, CHOICES[assignment][number])


def variant(assignment: str, typed_id: str = "") -> Variant:
    """The variant of ``assignment`` for this run (see the module's contract): the grader's id
    wins over ``typed_id``. Raises MissingStudentId when variants are on and there is no id."""
    salt, off = settings()
    grader_id = normalise(os.environ.get(GRADER_ID, ""))
    if grader_id:
        return compute(assignment, grader_id, salt, off, "grader")
    return compute(assignment, typed_id or "", salt, off, "typed")
