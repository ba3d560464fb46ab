"""The grader's side of per-student variants (the numbers themselves: utils/variant.py).

* ``typed_id`` (utils/variant.py): the student id a notebook typed, read from the file with
  ``ast`` (the notebook is never run for it);
* ``check``: the review flag of a notebook whose typed id is another student's. It is graded on
  the variant of the student who handed it in (the kernel gets ``Job.student``, never the
  typed id), so numbers copied from that other student fail; the flag holds the grade for a
  person (course/review.py), because the notebook most likely is that student's work;
* ``put_back_id_cell``: a notebook whose id cell was deleted gets the release's back;
* ``graded``: the line the receipt and the feedback page show: which variant was graded.

Threat: the typed id is student input. It decides nothing about the score; it can only add a
flag, and a notebook that types no id, or its own, is not flagged.
"""

from __future__ import annotations

import copy

from utils import variant as numbers

from .config import VariantSettings

GRADER_ID = numbers.GRADER_ID
typed_id = numbers.typed_id  # the id a notebook typed, read without running it
FLAG = "variant of another student"


def applies(assignment: str, cfg: VariantSettings) -> bool:
    """Whether the assignment has variants and they are on."""
    return assignment in numbers.DEFAULTS and assignment not in cfg.off


def check(nb, student: str, assignment: str, cfg: VariantSettings) -> list[str]:
    """The review flag for a notebook typed with another student's id (empty otherwise)."""
    typed = typed_id(nb)
    if not applies(assignment, cfg) or not typed or numbers.normalise(typed) == numbers.normalise(student):
        return []
    return [f"{FLAG}: the notebook's STUDENT_ID is {numbers.normalise(typed)!r}, it was handed in by "
            f"{numbers.normalise(student)!r}; graded on the variant of {numbers.normalise(student)!r}"]


def put_back_id_cell(nb, released) -> bool:
    """Give a notebook that lost its id cell (nothing binds STUDENT_ID) the release's, at its
    place, so the cells that read ``VARIANT`` run; the grader's id decides the numbers anyway.
    Returns whether it did."""
    if typed_id(nb) is not None:
        return False
    at = next((i for i, cell in enumerate(released.cells) if numbers.typed_in(cell) is not None), None)
    if at is None:
        return False
    nb.cells.insert(min(at, len(nb.cells)), copy.deepcopy(released.cells[at]))
    return True


def stamp_key(assignment: str, cfg: VariantSettings) -> str:
    """What of the variant settings a grade depends on ("" for an assignment without variants):
    the grading stamp (course/engine/plan.py) includes it, so a new salt grades again."""
    if assignment not in numbers.DEFAULTS:
        return ""
    return f"variants {'off' if assignment in cfg.off else 'on'}, salt {cfg.salt}"


def graded(assignment: str, student: str, cfg: VariantSettings) -> str:
    """Which variant the grader used for ``student`` (the receipt and the feedback page), or ""
    for an assignment without variants."""
    if assignment not in numbers.DEFAULTS:
        return ""
    return numbers.compute(assignment, student, cfg.salt, cfg.off, "grader").describe()
