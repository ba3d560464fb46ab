"""Bundled sample submissions: realistic student work with known scores.

``samples/<assignment>/samples.toml`` describes each sample student. A sample
starts from the student version in release/ and either keeps it untouched
(``solutions = "none"``) or fills every answer cell with the instructor's
solution (``solutions = "all"``); ``cells`` then replaces single cells, by
nbgrader grade id, with the student's own (often mistaken) code. ``fails``
lists the autograded test cells that must score zero, so the expected score
of every sample is written down by hand, next to the mistake that causes it.
``raw`` writes a file that is not a notebook at all.

Building writes ``submitted/<student>/<assignment>/<notebook>.ipynb`` and
leaves files whose content is unchanged alone.
``student_id`` types an id into the notebook's id cell (utils/variant.py: the numbers of a
student's own exercises come from the id); ``flags`` lists phrases of the review flags that
grading must raise for the sample (a notebook typed with another student's id, say).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .. import cells
from ..config import RELEASE, SAMPLES, SOURCE, SUBMITTED, CourseError, TOMLDecodeError, check_assignment, load_toml



@dataclass(frozen=True)
class Sample:
    student: str
    about: str
    solutions: str = "all"  # "all" or "none"
    cells: dict[str, str] = field(default_factory=dict)
    fails: tuple[str, ...] = ()
    raw: str | None = None  # the file is this text instead of a notebook
    error: str | None = None  # for raw samples: a phrase the grading error must contain
    student_id: str = ""  # the id typed in the notebook's id cell (a copy keeps its author's)
    flags: tuple[str, ...] = ()  # phrases of the review flags grading must raise (the grade is held)


def spec_path(assignment: str) -> Path:
    return SAMPLES / assignment / "samples.toml"


def load(assignment: str) -> list[Sample]:
    path = spec_path(assignment)
    if not path.exists():
        return []
    try:
        students = load_toml(path)["students"]
    except (TOMLDecodeError, KeyError) as exc:
        raise CourseError(f"{path}: expected [students.<name>] tables ({exc})") from None
    samples = []
    for name, entry in students.items():
        sample = Sample(
            student=name,
            about=entry.get("about", ""),
            solutions=entry.get("solutions", "all"),
            cells=dict(entry.get("cells", {})),
            fails=tuple(entry.get("fails", ())),
            raw=entry.get("raw"),
            error=entry.get("error"),
            student_id=str(entry.get("student_id", "")),
            flags=tuple(entry.get("flags", ())),
        )
        if sample.solutions not in ("all", "none"):
            raise CourseError(f"{path}: students.{name}.solutions must be 'all' or 'none'")
        samples.append(sample)
    return samples


def instructor_solutions(assignment: str, notebook: str) -> dict[str, str]:
    """grade id -> the instructor's answer, for every answer cell of a source notebook."""
    nb = nbformat.read(SOURCE / assignment / f"{notebook}.ipynb", as_version=4)
    return {
        cells.grade_id(cell): cells.strip_delimiters(cell.source)
        for cell in nb.cells
        if cells.is_solution(cell)
    }


def render(sample: Sample, assignment: str, notebook: str) -> tuple[str, set[str]]:
    """The submission's file content, and the grade ids of ``sample.cells`` it used."""
    if sample.raw is not None:
        return sample.raw, set()
    nb = nbformat.read(RELEASE / assignment / f"{notebook}.ipynb", as_version=4)
    solutions = instructor_solutions(assignment, notebook) if sample.solutions == "all" else {}
    used = set()
    for cell in nb.cells:
        grade_id = cells.grade_id(cell)
        if grade_id in sample.cells:
            cell.source = sample.cells[grade_id].strip("\n")
            used.add(grade_id)
        elif grade_id in solutions:
            cell.source = solutions[grade_id]
    if sample.student_id:
        _type_id(nb, sample)
    return nbformat.writes(nb), used


def _type_id(nb, sample: Sample) -> None:
    """Type ``sample.student_id`` into the notebook's id cell, as its author would have."""
    from utils.variant import ID_NAME

    empty = f'{ID_NAME} = ""'
    for cell in nb.cells:
        if cell.cell_type == "code" and empty in cell.source:
            cell.source = cell.source.replace(empty, f"{ID_NAME} = {json.dumps(sample.student_id)}", 1)
            return
    raise CourseError(f"students.{sample.student}.student_id: the notebook has no id cell ({empty}) to type it in")


MARKER = ".sample"


def _claim(folder: Path) -> None:
    """Make ``folder`` a sample's folder, refusing one that holds a real student's work."""
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise CourseError(
            f"{folder} holds a submission that is not a bundled sample: rename the sample "
            f"in samples.toml, or move that submission, before building samples"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by `python -m course samples`; safe to overwrite\n")


def build(assignment: str, dest: Path = SUBMITTED) -> list[Path]:
    """Write every sample submission of ``assignment``; return the notebook paths."""
    check_assignment(assignment)
    notebooks = sorted(p.stem for p in (RELEASE / assignment).glob("*.ipynb"))
    if not notebooks:
        raise CourseError(f"release/{assignment} has no notebook: run `python -m course release` first")
    written = []
    for sample in load(assignment):
        used: set[str] = set()
        for notebook in notebooks:
            content, used_here = render(sample, assignment, notebook)
            used |= used_here
            path = dest / sample.student / assignment / f"{notebook}.ipynb"
            _claim(path.parent)
            if not path.exists() or path.read_text() != content:
                path.write_text(content)
            written.append(path)
        unknown = set(sample.cells) - used
        if unknown:
            raise CourseError(
                f"{spec_path(assignment)}: students.{sample.student} replaces cells that "
                f"the notebook does not have: {', '.join(sorted(unknown))}"
            )
    return written
