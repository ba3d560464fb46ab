"""The parent's side of grading: record each graded submission, as its result arrives.

The gradebook, ``autograded/`` and the skip stamps have a single writer: the process that
runs ``course grade``. A worker (course/engine/worker.py) sends back the executed notebooks;
``accept`` validates them again and ``record`` scores them anew with nbgrader's own steps,
in nbgrader's order, configured by nbgrader_config.py, so nothing a submission wrote in its
sandbox (forged metadata, extra credit, a test cell's source) counts:

* the graded cells are put back to what the gradebook registered (``OverwriteCells``);
  stderr warnings are dropped and long outputs cut (``IgnorePattern``, ``LimitOutput``);
* a test cell scores with nbgrader's rule (``SaveAutoGrades``), except that a test cell
  that never ran (the kernel died or exited before it, or the run lacks it) scores zero;
* extra credit comes only from bonus cells of ``source/`` (course/plugins/bonus.py) that
  passed; graders' manual scores are kept, as nbgrader does; the late penalty is assessed
  (``AssignLatePenalties``, with the plugin of nbgrader_config.py);
* the autograded notebook, which the formgrader shows, gets each written answer's rubric,
  and each failed test cell the likely causes of its failure (``metadata.course.likely_causes``,
  looked up in ``mutations/<assignment>.causes.json`` by ``utils.causes``; every other cell's
  key is removed, so a value the submission planted never counts);
* then course/engine/settle.py: graded written answers of unchanged notebooks stay graded,
  the review decision in force is written again, the receipt, and the review evidence on top
  of a flagged notebook.

Each submission is written in its own transactions right after it finishes, and its stamp
last, so a grader killed mid-batch (even ``kill -9``) keeps everything recorded before and
grades the rest on the next run; a grade caught half-recorded has no receipt and is held
for review until then (course/review.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_output

from .. import cells, receipts
from ..config import LAYOUT, SOURCE, Layout, causes_file, helper_module
from ..files import record as record_stamp, write_atomic
from ..gradebook import open_gradebook
from ..nbgrader_cli import nbgrader_config
from ..plugins import bonus
from . import repair, settle
from .jobs import Job, Outcome, Result, Status

NOT_RUN = "this test cell did not run (the kernel had stopped before it): no points"


def _mark_not_run(nb) -> None:
    for cell in nb.cells:
        if cells.is_test(cell) and cell.get("execution_count") is None \
                and not any(o.output_type == "error" for o in cell.outputs):
            cell.outputs.append(new_output("error", ename="NotRun", evalue=NOT_RUN, traceback=[NOT_RUN]))


def warm_up() -> None:
    """Load what ``record`` loads on first use: nbgrader's steps, the rubric plugin, the
    configuration and the likely-causes helper (``course grade`` does it while the first
    submission runs)."""
    import nbgrader.preprocessors  # noqa: F401
    import nbgrader.utils  # noqa: F401

    from ..plugins import rubric  # noqa: F401

    nbgrader_config()
    helper_module("causes")


def record(assignment: str, student: str, notebooks: dict[str, object], flagged: bool, timestamp=None,
           db: Path = LAYOUT.gradebook) -> dict[str, object]:
    """Record the executed notebooks (name -> NotebookNode) of one submission; return them as
    recorded. A notebook of the assignment missing from ``notebooks`` scores zero (a limit
    stopped the run, or the student did not hand it in)."""
    from nbgrader.preprocessors import AssignLatePenalties, IgnorePattern, LimitOutput, OverwriteCells, \
        SaveAutoGrades

    from ..plugins.rubric import InsertRubrics

    config = nbgrader_config()
    with open_gradebook(db) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, **({"timestamp": timestamp} if timestamp else {}))
        names = [nb.name for nb in gb.find_assignment(assignment).notebooks]
    recorded = {}
    for name in names:
        resources = {"nbgrader": {"db_url": f"sqlite:///{db}", "assignment": assignment, "notebook": name,
                                  "student": student}}
        nb = notebooks.get(name)
        if nb is None:
            _zero(db, assignment, student, name, flagged)
            continue
        source = SOURCE / assignment / f"{name}.ipynb"
        if source.exists():  # a test cell the run lacks is put back unrun: it scores zero, never an old score
            repair.put_back(nb, nbformat.read(source, as_version=4))
        for step in (OverwriteCells, IgnorePattern, LimitOutput):
            nb, resources = step(config=config).preprocess(nb, resources)
        _mark_not_run(nb)
        nb, resources = SaveAutoGrades(config=config).preprocess(nb, resources)
        _extra_credit(db, assignment, student, name, nb, flagged)
        nb, resources = AssignLatePenalties(config=config).preprocess(nb, resources)
        # The rubrics for the formgrader come from source/, which no sandbox sees.
        nb, _ = InsertRubrics(config=config).preprocess(nb, resources)
        diagnose(nb, helper_module("causes").load(causes_file(assignment)))
        recorded[name] = nb
    return recorded


def diagnose(nb, signatures: dict) -> None:
    """Write each failed test cell's likely causes into its metadata; remove the key everywhere else.
    A test right after an answer that still raises its placeholder gets none: it failed because
    the exercise is not done, whatever its message resembles."""
    causes = helper_module("causes")
    unfinished = False
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("course")
        if isinstance(meta, dict):
            meta.pop(cells.LIKELY_CAUSES, None)
        if cells.is_solution(cell) and cell.cell_type == "code":
            unfinished = causes.unanswered(cell)
        failed = cells.is_test(cell) and not cells.passed(cell) and not unfinished
        message = causes.cell_message(cell) if failed else None
        found = causes.lookup(signatures, cells.grade_id(cell) or "", message) if message else []
        if found:
            course = cell.metadata.get("course")
            cell.metadata["course"] = {**(course if isinstance(course, dict) else {}), cells.LIKELY_CAUSES: found}


def _zero(db, assignment: str, student: str, name: str, flagged: bool) -> None:
    """A notebook that did not come back: every autograded cell scores zero."""
    with open_gradebook(db) as gb:
        submitted = gb.find_submission_notebook(name, assignment, student)
        answers = {cell.name for cell in submitted.notebook.solution_cells}
        for grade in submitted.grades:
            grade.auto_score = 0
            grade.needs_manual_grade = False
            if grade.name not in answers:
                grade.extra_credit = 0.0
        submitted.flagged = flagged
        gb.db.commit()


def _extra_credit(db, assignment: str, student: str, name: str, nb, flagged: bool) -> None:
    """Only bonus cells of source/ that passed earn extra credit; graders' own (on answers
    a person scores) is kept."""
    source = SOURCE / assignment / f"{name}.ipynb"
    extra = bonus.bonus_points(source) if source.exists() else {}
    passed = {cells.grade_id(c): cells.passed(c) for c in nb.cells if cells.is_grade(c)}
    with open_gradebook(db) as gb:
        submitted = gb.find_submission_notebook(name, assignment, student)
        answers = {cell.name for cell in submitted.notebook.solution_cells}
        for grade in submitted.grades:
            if grade.name in extra:
                grade.extra_credit = extra[grade.name] if passed.get(grade.name) else 0.0
            elif grade.name not in answers:
                grade.extra_credit = 0.0
        submitted.flagged = flagged
        gb.db.commit()


def parse(result_json: str, job: Job) -> tuple[Result, dict[str, object]]:
    """A worker's result for ``job``, validated, and its notebooks read; ValueError if malformed."""
    try:
        result = Result.from_json(result_json)
        if (result.student, result.assignment) != (job.student, job.assignment):
            raise ValueError("a result for another submission")
        notebooks = {}
        for name, text in result.notebooks.items():
            if name not in job.notebooks:
                raise ValueError(f"a result with an unknown notebook {name!r}")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
            notebooks[name] = nb
    except Exception as exc:
        raise ValueError(f"the grading result was malformed: {exc}") from exc
    return result, notebooks


def accept(result_json: str, job: Job, out: Layout | None = None) -> Outcome:
    """Record one worker's result (the parent, the only writer); a malformed result is an error.

    ``out``: the records to write (the gradebook, ``autograded/``, receipts, stamps, the review
    log it reads): the course's own by default, a staging copy for ``course regrade``."""
    try:
        result, notebooks = parse(result_json, job)
    except ValueError as exc:
        return Outcome(job.student, job.assignment, Status.ERROR, str(exc))
    if not result.status.recorded:
        return result.outcome()
    out = out or Layout(Path(job.root))
    folder = out.graded(job.student, job.assignment)
    stamp_file = out.graded_stamp(job.student, job.assignment)
    previous = settle.snapshot(out, job)
    if stamp_file.is_file() and not stamp_file.is_symlink():
        stamp_file.unlink()  # until the new scores are all written, this submission counts as not graded
    receipts.remove(out, job.student, job.assignment)  # and is held for review (course/review.py)
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    timestamp = _timestamp(Layout(Path(job.root)).submission(job.student, job.assignment))
    recorded = record(job.assignment, job.student, notebooks, bool(result.flags), timestamp, out.gradebook)
    standing = settle.settle(out, job, result, recorded, previous, timestamp)
    for name, nb in recorded.items():
        write_atomic(folder / f"{name}.ipynb", _text(nb))
    record_stamp(stamp_file, result.fingerprint)
    return settle.outcome(result, standing)


def _text(nb) -> str:
    """The notebook's JSON as nbformat writes it, less the indentation and the splitting into
    lines, which nbformat, Jupyter and the formgrader read alike: nbformat.writes copies the
    notebook and encodes it in Python (66 ms for a graded landscape notebook of 1 MB, 8 ms so).
    It was validated when the result was read (``parse``)."""
    return json.dumps(nb, sort_keys=True, ensure_ascii=False)


def _timestamp(folder: Path):
    """When the learning platform says it was handed in (``timestamp.txt``), or None."""
    path = folder / "timestamp.txt"
    if path.is_file() and not path.is_symlink() and path.stat().st_size < 200:
        from nbgrader.utils import parse_utc

        try:
            return parse_utc(path.read_text().strip())
        except Exception:
            return None
    return None
