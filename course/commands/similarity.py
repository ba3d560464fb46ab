"""The similarity report: pairs of submissions ranked by how alike the students' own work is.

``python -m course similarity ASSIGNMENT [--reference DIR]`` reads ``submitted/<student>/
<assignment>/`` (and a reference corpus of earlier years in the same layout), takes what each
student wrote (course/commands/student_work.py), fingerprints it (course/commands/fingerprints.py)
and writes ``reports/similarity-<assignment>.csv`` (every pair, with its scores) and ``.html``
(the ranked pairs, and the top ones side by side with the matching regions highlighted).

It is a list for a person to read, never a verdict: it reads submissions and the release and
writes only those two files; grades, the gradebook and feedback are never touched. Pairs within
the reference corpus are not listed (those students were seen in their own year).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..config import RELEASE, REPORTS, ROOT, SUBMITTED, CourseError
from ..files import write_atomic
from .similarity_page import render
from .similarity_scores import Analysis, analyse
from .student_work import Release, Work, load_release, read_class

SHOWN = 20  # pairs shown side by side on the page


def csv_text(analysis: Analysis) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "student_a", "student_b", "b_is_reference", "score", "code", "written", "output",
                     "shared_fingerprints"])
    for rank, p in enumerate(analysis.pairs, start=1):
        writer.writerow([rank, analysis.works[p.a].student, analysis.works[p.b].student,
                         int(analysis.works[p.b].reference), f"{p.score:.4f}", f"{p.code:.4f}", f"{p.text:.4f}",
                         f"{p.output:.4f}", p.shared])
    return out.getvalue()


def load_corpus(assignment: str, submitted: Path, reference: Path | None,
                release_dir: Path) -> tuple[list[Work], list[Work], Release]:
    if not (release_dir / assignment).is_dir():
        raise CourseError(f"release/{assignment} does not exist: run `python -m course release {assignment}` first")
    try:
        release = load_release(release_dir / assignment)
    except ValueError as exc:
        raise CourseError(f"{exc}: run `python -m course release {assignment}`") from None
    current = read_class(submitted, assignment, release)
    if len(current) < 2:
        raise CourseError(f"{submitted} holds {len(current)} submission(s) of {assignment}: a similarity report "
                          f"needs at least 2 (expected {submitted.name}/<student>/{assignment}/*.ipynb)")
    others: list[Work] = []
    if reference is not None:
        if not reference.is_dir():
            raise CourseError(f"--reference {reference}: no such folder")
        if reference.resolve() == submitted.resolve():
            raise CourseError(f"--reference {reference} is this year's submitted/: name a folder of earlier years")
        year = reference.resolve().parent.name if reference.name == "submitted" else reference.name
        others = read_class(reference, assignment, release, reference=True, label=f"{year}/")
        if not others:
            raise CourseError(f"--reference {reference} holds no submission of {assignment} "
                              f"(expected {reference}/<student>/{assignment}/*.ipynb, as in submitted/)")
    return current, others, release


@dataclass(frozen=True)
class Written:
    html: Path
    csv: Path
    analysis: Analysis


def run(assignment: str, reference: Path | None = None, shown: int = SHOWN, submitted: Path = SUBMITTED,
        release_dir: Path = RELEASE, out: Path = REPORTS) -> Written:
    """Write the report of ``assignment``; returns where, and what it found."""
    current, others, release = load_corpus(assignment, submitted, reference, release_dir)
    analysis = analyse(current, others, release)
    out.mkdir(parents=True, exist_ok=True)
    html, table = out / f"similarity-{assignment}.html", out / f"similarity-{assignment}.csv"
    write_atomic(table, csv_text(analysis))
    write_atomic(html, render(assignment, analysis, shown, reference))
    return Written(html, table, analysis)


def summary(written: Written) -> str:
    """What the command prints: where the report is, and the top pairs."""
    analysis = written.analysis
    lines = [f"similarity report: {written.html.relative_to(ROOT) if written.html.is_relative_to(ROOT) else written.html}"
             f" (all {len(analysis.pairs)} pairs: {written.csv.name}); it changes no grade"]
    for rank, pair in enumerate(analysis.pairs[:5], start=1):
        lines.append(f"  {rank}. {analysis.works[pair.a].student} and {analysis.works[pair.b].student}: "
                     f"{pair.score:.3f}")
    lines += [f"  not read: {w.student}: {problem}" for w in analysis.works for problem in w.problems]
    return "\n".join(lines)
