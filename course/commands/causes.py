"""Likely causes: how each known mistake fails, so that a failed test can name its misconception.

``python -m course causes ASSIGNMENT`` runs the mutation suite (course/commands/mutations.py)
and records, for every mistake of ``mutations/<assignment>.toml``, the **signature** of each
declared cell it fails: the cell's grade id and the failure's first line normalised by
``utils.causes.normalise`` (the one home of that rule). It writes two generated files,
committed beside their sources:

* ``mutations/<assignment>.causes.json``, for the grader: every mistake's signatures and
  ``diagnosis`` (the ``cases`` part, what the suite saw), and the lookup table (``signatures``):
  (cell, signature) -> the mistakes behind it (``support``: diagnosis -> how many) and the
  causes it names, by the rule of ``causes_of`` (none where the evidence is thin);
* ``utils/causes/<assignment>.json``, shipped to students with the helpers: the signatures
  that name a cause in the same table built only from failures raised by a **visible** line
  of a test cell (the outermost line of the test cell in the traceback is outside its hidden
  regions, course/cells.py), so no message of a hidden test, and no diagnosis learned only
  from one, reaches students. Where
  a hidden test fails first, the suite also runs the cell as the release has it, hidden
  regions removed (``mutations.run(released=True)``): that failure is what the student's own
  run shows, and it is recorded as visible (for the grader too: a graded run whose hidden
  tests pass fails the same way).

``--keep-signatures`` rebuilds both files from the signatures already recorded, with the
diagnoses as the cases now state them (after editing diagnoses only: no suite run).
``held_out`` and ``left_out`` measure how well signatures generalise (benchmarks/bench_causes.py).

Only the cells a mistake declares are recorded: where the suite reports a wrong verdict (a
cascade, a mistake not caught), ``course causes`` prints it, and the other cells teach nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..config import CourseError, causes_file, check_assignment, helper_module
from . import mutations

student_causes = helper_module("causes")  # the one home of normalise and lookup
normalise = student_causes.normalise

GENERATED_BY = "python -m course causes {assignment}"
# The rule that decides what a signature says (causes_of): a wrong cause misleads a student,
# no cause does not, so a signature names a diagnosis only on evidence.
SUPPORT = 2  # mistakes with a diagnosis behind a signature before it names that diagnosis
MOST_LIKELY = 2  # diagnoses a signature may name ("Possible causes"); behind more, it names none


@dataclass(frozen=True)
class Seen:
    """One failure of one mistake: the cell it failed and the signature of its message;
    ``released``: the cell run as students have it, hidden regions removed; ``written``: a
    digest of the case's code (``written()``), so that cases with the same code count as one
    mistake."""

    case: str
    diagnosis: str
    cell: str
    signature: str
    visible: bool
    released: bool = False
    written: str = ""

    @property
    def mistake(self) -> str:
        """What counts as one mistake: its code, or its case where that is unknown."""
        return self.written or self.case


def written(case: mutations.Case) -> str:
    """A digest of a case's cells, spaces aside. A case that repeats another's code (one that
    shows that a slip costs one cell) is the same mistake again, not more evidence."""
    code = "\n".join(f"{cell}\n{' '.join(source.split())}" for cell, source in sorted(case.cells.items()))
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def assignments_with_diagnoses() -> list[str]:
    """The assignments whose mistakes all have a diagnosis (the others are not ready for causes)."""
    return [a for a in mutations.assignments_with_cases()
            if all(c.diagnosis for c in mutations.load(a) if c.kind is mutations.Kind.MISTAKE)]


def grader_path(assignment: str) -> Path:
    return causes_file(assignment, mutations.MUTATIONS)


def student_path(assignment: str) -> Path:
    return student_causes.FOLDER / f"{assignment}.json"


def seen_in(verdicts: list[mutations.Verdict]) -> list[Seen]:
    """The failures of the mistakes in the cells they declare (a cascade into another cell, a
    verdict ``mutations`` reports as wrong, teaches nothing about that other cell); CourseError
    if a mistake has no diagnosis."""
    mistakes = [v for v in verdicts if v.case.kind is mutations.Kind.MISTAKE and not v.error]
    undiagnosed = [v.case.id for v in mistakes if not v.case.diagnosis]
    if undiagnosed:
        raise CourseError(f"{len(undiagnosed)} mistakes have no diagnosis (write one in their case: the "
                          f"misconception in the student's terms): {', '.join(undiagnosed)}")
    graded = [Seen(v.case.id, v.case.diagnosis, cell, normalise(v.failed[cell]), cell in v.visible,
                   written=written(v.case))
              for v in mistakes for cell in v.case.fails if cell in v.failed]
    as_released = [Seen(v.case.id, v.case.diagnosis, cell, normalise(v.released[cell]), True, released=True,
                        written=written(v.case))
                   for v in mistakes for cell in v.case.fails if cell in v.released]
    return graded + as_released


def causes_of(support: dict[str, int]) -> list[str]:
    """The causes a signature names, from ``support`` (diagnosis -> how many distinct mistakes
    produced it): every diagnosis behind it, most supported first (ties by name), if there
    are at most ``MOST_LIKELY`` of them and each has at least ``SUPPORT`` mistakes; otherwise
    none. One lone mistake does not show that its message means its misconception (another
    misconception may fail the same way: held out, a lone mistake's diagnosis is wrong about
    as often as right), and a diagnosis with a lone mistake beside a supported one shows that
    the message is shared, so the supported one is not named either."""
    if not support or len(support) > MOST_LIKELY or min(support.values()) < SUPPORT:
        return []
    return [d for d, _ in sorted(support.items(), key=lambda item: (-item[1], item[0]))]


def lookup_table(seen: list[Seen]) -> list[dict]:
    """Every informative signature of ``seen`` (a missing name names no misconception), with the
    distinct mistakes behind it per diagnosis (``support``; cases with the same code count
    once), whether several diagnoses share it (``ambiguous``) and the causes it names
    (``causes_of``; possibly none)."""
    behind: dict[tuple[str, str], dict[str, set[str]]] = {}
    for s in seen:
        if student_causes.informative(s.signature):
            behind.setdefault((s.cell, s.signature), {}).setdefault(s.diagnosis, set()).add(s.mistake)
    entries = []
    for (cell, signature), mistakes in sorted(behind.items()):
        support = {d: len(ids) for d, ids in sorted(mistakes.items())}
        entries.append({"cell": cell, "signature": signature, "ambiguous": len(support) > 1,
                        "causes": causes_of(support), "mistakes": len(set().union(*mistakes.values())),
                        "support": support})
    return entries


def _documents(assignment: str, seen: list[Seen]) -> tuple[dict, dict]:
    header = {"assignment": assignment, "generated_by": GENERATED_BY.format(assignment=assignment)}
    cases: dict[str, dict] = {}
    for s in seen:
        case = cases.setdefault(s.case, {"diagnosis": s.diagnosis, "failures": []})
        case["failures"].append({"cell": s.cell, "signature": s.signature, "visible": s.visible,
                                 **({"released": True} if s.released else {})})
    grader = {**header, "signatures": lookup_table(seen), "cases": dict(sorted(cases.items()))}
    student = {**header, "signatures": [{k: e[k] for k in ("cell", "signature", "ambiguous", "causes")}
                                        for e in lookup_table([s for s in seen if s.visible]) if e["causes"]]}
    return grader, student


def write(assignment: str, seen: list[Seen]) -> tuple[Path, Path]:
    """Write the grader's and the students' causes files of ``assignment``."""
    grader, student = _documents(assignment, seen)
    paths = grader_path(assignment), student_path(assignment)
    paths[1].parent.mkdir(exist_ok=True)
    for path, document in zip(paths, (grader, student)):
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    return paths


def recorded(assignment: str) -> list[Seen]:
    """The signatures of the committed grader file, with the diagnoses the cases state now."""
    path = grader_path(assignment)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CourseError(f"{path} cannot be read ({exc}): run `python -m course causes {assignment}`") from None
    cases = {c.id: c for c in mutations.load(assignment) if c.kind is mutations.Kind.MISTAKE}
    seen = []
    for case_id, entry in sorted(data.get("cases", {}).items()):
        case = cases.get(case_id)
        if case is None or not case.diagnosis:
            raise CourseError(f"{path} records {case_id!r}, which is no longer a mistake with a diagnosis: "
                              f"run `python -m course causes {assignment}` without --keep-signatures")
        seen += [Seen(case_id, case.diagnosis, f["cell"], f["signature"], bool(f["visible"]), bool(f.get("released")),
                      written(case)) for f in entry["failures"]]
    return seen


def record(assignment: str, keep_signatures: bool = False) -> tuple[tuple[Path, Path], list[str]]:
    """Run the suite (unless ``keep_signatures``) and write the two causes files; also the
    suite's wrong verdicts, for the user to see."""
    check_assignment(assignment)
    seen_in([mutations.Verdict(c) for c in mutations.load(assignment)])  # every mistake diagnosed, before a run
    if keep_signatures:
        return write(assignment, recorded(assignment)), []
    verdicts = mutations.run(assignment, released=True)
    return write(assignment, seen_in(verdicts)), [v.explain() for v in verdicts if not v.ok]


# ---- how well signatures generalise ------------------------------------------------------------

OUTCOMES = ("right", "right among possible", "wrong", "none")


def split(seen: list[Seen]) -> tuple[list[Seen], list[Seen]]:
    """A fixed split: for each cell, its mistakes in the order of their ids (cases with the same
    code are one mistake, ordered by its first id), alternately to the half the signatures are
    derived from and the half they are judged on (every failure of a mistake in that cell to
    the same half)."""
    first: dict[tuple[str, str], str] = {}
    for s in seen:
        first[s.cell, s.mistake] = min(first.get((s.cell, s.mistake), s.case), s.case)
    order: dict[str, list[str]] = {}
    for (cell, _), case in sorted(first.items(), key=lambda item: item[1]):
        order.setdefault(cell, []).append(case)
    derive, judge = [], []
    for s in seen:
        (derive if order[s.cell].index(first[s.cell, s.mistake]) % 2 == 0 else judge).append(s)
    return derive, judge


def outcomes(derive: list[Seen], judge: list[Seen]) -> Counter:
    """Outcome -> failures of ``judge``: the lookup table of ``derive`` gives exactly their
    diagnosis, lists it among possible causes, gives only other ones, or nothing."""
    signatures = student_causes.table({"signatures": lookup_table(derive)})
    counts = Counter({outcome: 0 for outcome in OUTCOMES})
    for s in judge:
        found = signatures.get((s.cell, s.signature), [])
        if not found:
            counts["none"] += 1
        elif s.diagnosis not in found:
            counts["wrong"] += 1
        else:
            counts["right" if len(found) == 1 else "right among possible"] += 1
    return counts


def held_out(seen: list[Seen]) -> Counter:
    """The outcomes of the judged half of ``split``, with the table of the derived half."""
    return outcomes(*split(seen))


def left_out(seen: list[Seen]) -> Counter:
    """The outcomes of every mistake's failures with the table of all the other mistakes (its
    copies left out too): what a mistake the suite does not hold would get from the table
    grading uses."""
    counts = Counter({outcome: 0 for outcome in OUTCOMES})
    for mistake in sorted({s.mistake for s in seen}):
        counts.update(outcomes([s for s in seen if s.mistake != mistake], [s for s in seen if s.mistake == mistake]))
    return counts
