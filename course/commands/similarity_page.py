"""The similarity report's page: one self-contained HTML file (no script, nothing from a network).

A ranked table of pairs, then the top pairs side by side: each cell the students wrote, with
the lines the release has in grey and the regions the two share highlighted (darker where no
other submission has them). Student text is untrusted: every character of it reaches the page
through ``markupsafe.escape``, and the template escapes everything else it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from .fingerprints import matched_spans
from .similarity_scores import Analysis, Pair
from .student_work import TEXT, Piece

TEMPLATES = Path(__file__).resolve().parent / "templates"
TABLE_ROWS = 200  # the table lists the top pairs; the CSV has them all
COMMON, RARE = 1, 2  # highlight levels: shared by others too, shared by these two alone


@dataclass(frozen=True)
class Side:
    key: str
    kind: str
    html: Markup | None  # None: this student has nothing in that cell


@dataclass(frozen=True)
class Shown:
    rank: int
    pair: Pair
    a: str
    b: str
    reference: bool
    rows: list[tuple[str, Side, Side]]  # (what the row is, left, right)


def highlighted(piece: Piece, spans: list[tuple[int, int, int]]) -> Markup:
    """The piece's text, escaped, line by line: given lines greyed, matched spans marked."""
    level = np.zeros(len(piece.text), np.int8)
    for start, end, how in spans:
        level[start:end] = np.maximum(level[start:end], how)
    lines, offset = [], 0
    for number, line in enumerate(piece.text.splitlines(keepends=True)):
        end = offset + len(line.rstrip("\r\n"))
        cuts = [offset, *(offset + 1 + np.flatnonzero(np.diff(level[offset:end]))).tolist(), end]
        parts = []
        for a, b in zip(cuts, cuts[1:]):
            text, how = escape(piece.text[a:b]), int(level[a]) if b > a else 0
            parts.append(Markup(f'<mark class="{"rare" if how == RARE else "common"}">{text}</mark>') if how else text)
        css = "line given" if number in piece.given else "line"
        lines.append(Markup(f'<span class="{css}">') + Markup("").join(parts) + Markup("</span>"))
        offset += len(line)
    return Markup("\n").join(lines)


def _sides(analysis: Analysis, who: int, shared: np.ndarray, rare: set[int]) -> dict[str, tuple[int, Side]]:
    work, found = analysis.works[who], analysis.prints[who]
    sides = {}
    for piece, located in zip(work.pieces, found.pieces):
        spans = [(s, e, RARE if int(located.hashes[i]) in rare else COMMON)
                 for s, e, i in matched_spans(located, shared)]
        sides[piece.key] = (piece.order, Side(piece.key, piece.kind, highlighted(piece, spans)))
    return sides


def shown_pair(analysis: Analysis, rank: int, pair: Pair) -> Shown:
    shared = np.intersect1d(analysis.prints[pair.a].hashes, analysis.prints[pair.b].hashes)
    rare = set(shared[analysis.df_of(shared) <= 2].tolist()) if len(shared) else set()
    left, right = _sides(analysis, pair.a, shared, rare), _sides(analysis, pair.b, shared, rare)
    keys = sorted(set(left) | set(right), key=lambda k: (min(left.get(k, (1e9,))[0], right.get(k, (1e9,))[0]), k))
    rows = []
    for key in keys:
        kind = (left.get(key) or right.get(key))[1].kind
        label = key + (" (written answer)" if kind == TEXT else "")
        empty = Side(key, kind, None)
        rows.append((label, left.get(key, (0, empty))[1], right.get(key, (0, empty))[1]))
    works = analysis.works
    return Shown(rank, pair, works[pair.a].student, works[pair.b].student, works[pair.b].reference, rows)


def render(assignment: str, analysis: Analysis, shown: int, reference: Path | None) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    scores = np.array([p.score for p in analysis.pairs]) if analysis.pairs else np.zeros(1)
    works = analysis.works
    return env.get_template("similarity.html.j2").render(
        assignment=assignment,
        current=sum(not w.reference for w in works),
        references=sum(w.reference for w in works),
        reference=str(reference) if reference else "",
        pairs=len(analysis.pairs),
        median=float(np.median(scores)),
        top5=float(np.quantile(scores, 0.95)),
        table=[(rank, p, works[p.a].student, works[p.b].student, works[p.b].reference)
               for rank, p in enumerate(analysis.pairs[:TABLE_ROWS], start=1)],
        shown=[shown_pair(analysis, rank, p) for rank, p in enumerate(analysis.pairs[:shown], start=1)
               if p.score > 0],
        problems=[(w.student, problem) for w in works for problem in w.problems],
    )
