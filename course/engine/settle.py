"""After the recording has scored a submission: written answers, receipt, review decision, evidence.

``settle`` runs in the parent (the single writer), right after ``recording.record`` scored
the executed notebooks into the gradebook, and before the autograded notebooks and the skip
stamp are written:

1. written answers a person has graded stay graded when the notebooks are the ones they read
   (nbgrader marks every manual score for review again on each autograde, in case the answer
   changed: a regrade of the same notebooks must not send them back to *pending*);
2. the review decision in force (course/review.py) is written into the gradebook again: a
   ``set`` over the new scores, and a ``set`` made for an earlier submission lifted;
3. the receipt (course/receipts.py): the inputs' hashes, how the kernel ran, the
   autograder's cell scores and the flags; written after 2, so that a grader killed in
   between leaves no receipt, and a grade without one is held (course/review.py);
4. the evidence on top of each autograded notebook of a flagged submission (the formgrader
   shows it to the person grading; students never see it: feedback pages are built from
   the submitted notebook).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import cells, gradebook, receipts, review, variants
from ..config import Layout, VariantSettings
from .jobs import Job, Outcome, Result


def snapshot(out: Layout, job: Job) -> tuple[dict | None, dict]:
    """What settling compares with, taken before the new scores are recorded: the previous
    receipt and which graded written answers waited for a person."""
    return (receipts.read(out, job.student, job.assignment),
            gradebook.manual_marks(job.assignment, job.student, out.gradebook))


def _cell_scores(out: Layout, job: Job, recorded: dict) -> dict[str, dict[str, float]]:
    """The autograder's score of each autograded cell, in the order of the notebook."""
    scores = gradebook.autograded_scores(job.assignment, job.student, out.gradebook)
    ordered = {}
    for name, given in scores.items():
        order = [cells.grade_id(c) for c in recorded[name].cells if cells.is_test(c)] if name in recorded else []
        order += sorted(gid for gid in given if gid not in order)
        ordered[name] = {gid: given[gid] for gid in order if gid in given}
    return ordered


def settle(out: Layout, job: Job, result: Result, recorded: dict, previous: tuple[dict | None, dict],
           handed_in=None) -> review.Standing:
    """Steps 1 to 4 above for one recorded submission; ``recorded`` gets its evidence cells."""
    receipt = receipts.make(Path(job.root), job.student, job.assignment, _cell_scores(out, job, recorded),
                            result.flags, result.ran_on, str(handed_in or ""),
                            variants.graded(job.assignment, job.student,
                                            VariantSettings.from_kernel_environment(job.variants)))
    old_receipt, marks = previous
    if old_receipt and old_receipt["inputs"].get("submission") == receipt["inputs"]["submission"]:
        gradebook.keep_manual_marks(job.assignment, job.student, marks, out.gradebook)
    standing = review.enforce(job.student, job.assignment, out, receipt=receipt)
    receipts.write(out, receipt)
    text = review.evidence(standing, job.student, job.assignment)
    for nb in recorded.values():
        review.place_evidence(nb, text)
    return standing


def outcome(result: Result, standing: review.Standing) -> Outcome:
    """The report's line: a flagged grade says whether it is held or a decision stands."""
    done = result.outcome()
    if standing.held:
        note = "held for review: it counts nowhere until a person decides (python -m course review)"
    elif standing.decision:
        note = f"review decision kept ({standing.describe()})"
    else:
        return done
    return replace(done, message="; ".join(m for m in (done.message, note) if m))
