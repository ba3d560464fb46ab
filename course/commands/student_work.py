"""What a student wrote in a notebook: the notebook-aware half of the similarity report.

A submission's own work is its solution cells (nbgrader metadata ``solution: true``) and the
cells it added, minus the released text: every line the release has in that cell (starter
code, ``# YOUR CODE HERE``, a provided ``print``) is *given*, not written. A cell that still
carries the grade id of a test or of provided code is never the student's, whatever it holds;
a cell without nbgrader metadata (one the student added, or one whose metadata Colab
stripped) is the student's except for lines that appear anywhere in the release. Written
answers (markdown solution cells) are text. Outputs count only for cells where the student
wrote code: their printed text, their figures (by content) and the numbers a plotly figure
draws. Nothing here runs student code; notebooks are read as JSON and never written.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import cells

CODE, TEXT, OUTPUT = "code", "text", "output"
MAX_OUTPUT_LINES = 200  # of one cell; a printed tensor of 10,000 numbers adds nothing more
MAX_LINE = 300  # characters of an output line that are kept
MAX_NOTEBOOK_MB = 100  # larger files are reported, not read (as grading refuses them)


@dataclass(frozen=True)
class Piece:
    """One unit of a student's work: the code of a cell, a written answer, or a cell's output."""

    key: str  # "<notebook>/<grade id>", "<notebook>/added <n>"; outputs add " output"
    kind: str  # CODE, TEXT or OUTPUT
    text: str  # as the student has it (what the page shows)
    given: frozenset[int] = frozenset()  # 0-based numbers of the lines the release has
    order: int = 0  # position in the notebook, for the page


@dataclass(frozen=True)
class Work:
    """Everything one submission of an assignment holds that its student wrote."""

    student: str  # as the report names it ("alice", or "2025/alice" for the reference corpus)
    reference: bool
    pieces: tuple[Piece, ...]
    problems: tuple[str, ...] = ()  # notebooks that could not be read, and why


@dataclass(frozen=True)
class Release:
    """The released notebooks of an assignment, as the subtraction needs them."""

    cell_lines: dict[str, tuple[str, ...]]  # key of each solution cell -> its lines, stripped
    all_lines: frozenset[str]  # every non-empty line of every released cell, stripped
    code: tuple[str, ...]  # every released code cell (provided code, tests, starter code)
    text: tuple[str, ...]  # every released markdown cell
    roles: dict[str, str] = field(default_factory=dict)  # grade id -> "solution" or "given"


def read_notebook(path: Path) -> dict:
    """A notebook as JSON, or ValueError with what is wrong (never a traceback for bad files)."""
    if path.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
        raise ValueError(f"larger than {MAX_NOTEBOOK_MB} MB")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a notebook ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook (no list of cells)")
    return nb


def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def load_release(folder: Path) -> Release:
    cell_lines, all_lines, code, text, roles = {}, set(), [], [], {}
    for path in sorted(folder.glob("*.ipynb")):
        for cell in read_notebook(path)["cells"]:
            source = source_of(cell)
            lines = tuple(line.strip() for line in source.splitlines())
            all_lines |= {line for line in lines if line}
            (code if cell.get("cell_type") == "code" else text).append(source)
            gid = cells.grade_id(cell)
            if gid:
                roles[gid] = "solution" if cells.is_solution(cell) else "given"
                if cells.is_solution(cell):
                    cell_lines[f"{path.stem}/{gid}"] = lines
    if not code and not text:
        raise ValueError(f"{folder} holds no released notebook")
    return Release(cell_lines, frozenset(all_lines), tuple(code), tuple(text), roles)


def given_lines(source: str, release_lines: tuple[str, ...] | None, release: Release) -> frozenset[int]:
    """Lines of a cell that the release has: each released line of the same cell once (a
    student may write the same line again), any released line for a cell without a match."""
    given = set()
    available = Counter(release_lines) if release_lines is not None else None
    for number, line in enumerate(source.splitlines()):
        stripped = line.strip()
        if not stripped:
            given.add(number)
        elif available is not None and available[stripped] > 0:
            available[stripped] -= 1
            given.add(number)
        elif available is None and stripped in release.all_lines:
            given.add(number)
    return frozenset(given)


def _own_cell(cell: dict, notebook: str, index: int, added: int, release: Release) -> Piece | None:
    """The student's part of one cell, or None where the cell is not theirs or holds nothing new."""
    gid = cells.grade_id(cell)
    if gid and release.roles.get(gid) == "given":
        return None
    if cell.get("cell_type") not in ("code", "markdown"):
        return None
    key = f"{notebook}/{gid}" if gid and gid in release.roles else f"{notebook}/added {added}"
    source = source_of(cell)
    given = given_lines(source, release.cell_lines.get(key), release)
    if len(given) >= len(source.splitlines()):
        return None
    kind = CODE if cell.get("cell_type") == "code" else TEXT
    return Piece(key, kind, source, given, index)


def _image_line(kind: str, data) -> str:
    raw = "".join(data) if isinstance(data, list) else str(data)
    try:
        content = base64.b64decode(raw, validate=False) if kind != "image/svg+xml" else raw.encode()
    except ValueError:
        content = raw.encode()
    return f"[figure {kind}: {hashlib.sha256(content).hexdigest()[:16]}]"


def _plotly_lines(figure) -> list[str]:
    """One line per trace: its type and the numbers it draws (rounded as printed numbers are)."""
    lines = []
    for trace in (figure.get("data") or []) if isinstance(figure, dict) else []:
        if not isinstance(trace, dict):
            continue
        values = [trace.get(axis) for axis in ("x", "y", "z") if trace.get(axis) is not None]
        numbers = json.dumps(values, separators=(",", ":"), default=str)[:20000]
        lines.append(f"[plotly {trace.get('type', 'scatter')}: {hashlib.sha256(numbers.encode()).hexdigest()[:16]}]")
    return lines


def output_lines(cell: dict) -> list[str]:
    """What a code cell printed and drew, one line each; stderr (warnings, progress bars) is left out."""
    lines: list[str] = []
    for out in cell.get("outputs") or []:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout":
            lines += source_of({"source": out.get("text", "")}).splitlines()
        elif kind == "error":
            lines.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
        elif kind in ("execute_result", "display_data"):
            data = out.get("data") or {}
            images = [k for k in data if k.startswith("image/")]
            if "application/vnd.plotly.v1+json" in data:
                lines += _plotly_lines(data["application/vnd.plotly.v1+json"])
            elif images:
                lines += [_image_line(k, data[k]) for k in sorted(images)]
            elif "text/plain" in data:
                lines += source_of({"source": data["text/plain"]}).splitlines()
    lines = [line[:MAX_LINE] for line in lines if line.strip()]
    return lines[:MAX_OUTPUT_LINES]


def notebook_pieces(nb: dict, notebook: str, release: Release) -> list[Piece]:
    pieces, added = [], 0
    for index, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict):
            continue
        piece = _own_cell(cell, notebook, index, added, release)
        if piece is None:
            continue
        added += piece.key.startswith(f"{notebook}/added ")
        pieces.append(piece)
        printed = output_lines(cell) if piece.kind == CODE else []
        if printed:
            pieces.append(Piece(f"{piece.key} output", OUTPUT, "\n".join(printed), frozenset(), index))
    return pieces


def read_work(student: str, folder: Path, release: Release, reference: bool = False) -> Work:
    """The own work of the submission in ``folder`` (``<...>/<student>/<assignment>/``)."""
    pieces, problems = [], []
    for path in sorted(folder.glob("*.ipynb")):
        if path.is_symlink() or not path.is_file():
            problems.append(f"{path.name}: not a regular file")
            continue
        try:
            nb = read_notebook(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        pieces += notebook_pieces(nb, path.stem, release)
    return Work(student, reference, tuple(pieces), tuple(problems))


def read_class(root: Path, assignment: str, release: Release, reference: bool = False,
               label: str = "") -> list[Work]:
    """Every submission of ``assignment`` under ``root`` (``<root>/<student>/<assignment>/``)."""
    works = []
    for folder in sorted(root.glob(f"*/{assignment}")):
        if folder.is_dir() and not folder.parent.name.startswith("."):
            works.append(read_work(f"{label}{folder.parent.name}", folder, release, reference))
    return works
