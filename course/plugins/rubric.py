"""Rubrics: the model answer and marking criteria of each written answer, for graders only.

In ``source/<assignment>/<notebook>.ipynb`` a written answer is a markdown cell marked as
solution and grade: its text is the model answer (the release replaces it with
``YOUR ANSWER HERE``). The marking criteria are a plain markdown cell right after it whose
metadata holds ``"course": {"rubric": "<grade id of the answer>"}``.

* ``StripRubrics`` (GenerateAssignment's pipeline) removes the rubric cells, so they are in
  no student version;
* ``InsertRubrics`` (last in Autograde's pipeline) puts a rubric cell, holding the model
  answer and the criteria read from source/, after each answer in the autograded notebook,
  which is the notebook nbgrader's formgrader shows the person grading.

Feedback pages are built from the submitted notebook (course/feedback.py), so a rubric
never reaches a student; rubric cells are skipped there too, should one ever appear.
"""

from __future__ import annotations

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from .. import cells
from ..config import SOURCE

HEADING = "Rubric for graders"


def rubrics(source_nb) -> dict[str, str]:
    """answer grade id -> the rubric text graders see: model answer, then marking criteria."""
    answers = {cells.grade_id(c): c for c in source_nb.cells if cells.is_written_answer(c)}
    found = {}
    for cell in source_nb.cells:
        answer_id = cells.rubric_of(cell)
        if answer_id is None:
            continue
        if answer_id not in answers:
            raise ValueError(f"a rubric cell names the answer {answer_id!r}, but the notebook has no written "
                             f"answer with that grade id; answers: {', '.join(sorted(map(str, answers)))}")
        points = cells.points(answers[answer_id])
        found[answer_id] = (
            f"**{HEADING}: `{answer_id}` ({points:g} points).** Not handed out, not in the feedback.\n\n"
            f"**Model answer.** {answers[answer_id].source.strip()}\n\n"
            f"**Marking criteria.** {cell.source.strip()}"
        )
    return found


class StripRubrics(NbGraderPreprocessor):
    """Remove rubric cells from the student version."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if cells.rubric_of(cell) is None]
        return nb, resources


class InsertRubrics(NbGraderPreprocessor):
    """Put each answer's rubric after it in the autograded notebook, for the formgrader."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        source = SOURCE / info["assignment"] / f"{info['notebook']}.ipynb"
        if not source.exists():
            return nb, resources
        texts = rubrics(nbformat.read(source, as_version=4))
        kept = []
        for cell in nb.cells:
            if cells.rubric_of(cell) is not None:
                continue  # a submission cannot bring its own rubric
            kept.append(cell)
            answer_id = cells.grade_id(cell)
            if answer_id in texts:
                rubric = nbformat.v4.new_markdown_cell(texts[answer_id], id=f"rubric-{answer_id}")
                rubric.metadata["course"] = {"rubric": answer_id}
                kept.append(rubric)
        nb.cells = kept
        return nb, resources
