"""A class of submissions with planted copies, for the similarity report's test and benchmark.

Honest students are assembled cell by cell from the course's own differently written work:
for each solution cell, one of the instructor's solution, the sample submissions' cells
(samples/<a>/samples.toml) and the mutation cases (mutations/<a>.toml), correct or mistaken,
the first ones more often (the n-th with weight 1/n: many students converge on one solution);
each student leaves some cells unfinished, writes the written answers in their own words
(random sentences from a shared vocabulary) and has the output their code would print (the
same for every correct variant of a cell, one per mistake). Two honest students therefore
share whole cells now and then, as classmates do on short exercises.

Planted copies take an honest student's notebook and disguise it: ``rename`` (every name the
student bound, consistently), ``reformat`` (ast.unparse: comments, spacing, quotes and
parentheses gone, blank lines and new comments added), ``reorder`` (cells moved, functions in
a cell swapped), ``edit`` (a few lines changed, added or removed, and a few words of the written
answers), and combinations. Blank students hand in the release untouched (with the
NotImplementedError it prints); nearly blank ones replace a few ``raise NotImplementedError()``
with ``pass`` or a placeholder line.
"""

from __future__ import annotations

import ast
import builtins
import copy
import io
import json
import keyword
import random
import re
import tokenize
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISGUISES = ("rename", "reformat", "reorder", "edit", "rename+reformat", "rename+reorder+edit",
             "rename+reformat+reorder+edit")
NAMES = ("val", "tmp", "result", "out", "res", "acc", "data", "item", "thing", "buf", "cur", "nxt", "ans",
         "total", "arr", "vec", "mat", "z", "q", "w2", "holder", "store", "keep", "my_var", "helper")


@dataclass
class Variant:
    source: str
    correct: bool


@dataclass
class Class:
    """The corpus: notebooks by student, and what each student is."""

    notebooks: dict[str, dict] = field(default_factory=dict)  # student -> notebook JSON
    copies: dict[str, tuple[str, str]] = field(default_factory=dict)  # copy -> (original, disguise)
    blank: set[str] = field(default_factory=set)  # blank and nearly blank students

    def write(self, submitted: Path, assignment: str) -> None:
        for student, nb in self.notebooks.items():
            folder = submitted / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{assignment}.ipynb").write_text(json.dumps(nb))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_solution(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def pools(assignment: str) -> dict[str, list[Variant]]:
    """Every differently written answer the course has for each solution code cell."""
    import sys

    sys.path.insert(0, str(ROOT))
    from course.commands import mutations, samples
    from course.commands.samples import instructor_solutions

    found: dict[str, dict[str, Variant]] = {}
    for gid, source in instructor_solutions(assignment, assignment).items():
        found.setdefault(gid, {})[source.strip()] = Variant(source.strip(), True)
    for case in mutations.load(assignment):
        for gid, source in case.cells.items():
            found.setdefault(gid, {}).setdefault(source.strip(), Variant(source.strip(), case.kind is mutations.Kind.CORRECT))
    for sample in samples.load(assignment):
        for gid, source in sample.cells.items():
            found.setdefault(gid, {}).setdefault(source.strip(), Variant(source.strip(), not sample.fails))
    return {gid: list(variants.values()) for gid, variants in found.items()}


def _words(release: dict) -> list[str]:
    text = " ".join(_source(c) for c in release["cells"] if c["cell_type"] == "markdown")
    return sorted(set(w.lower() for w in re.findall(r"[A-Za-z]{3,}", text)))


def _output(gid: str, variant: Variant, index: int) -> list[dict]:
    value = zlib.crc32((gid if variant.correct else variant.source).encode()) % 100003 / 997.0
    return [{"output_type": "stream", "name": "stdout", "text": f"{gid} result: {value:.4f}\n"}]


def honest(release: dict, pool: dict[str, list[Variant]], words: list[str], rng: random.Random) -> dict:
    nb = copy.deepcopy(release)
    done = rng.uniform(0.5, 1.0)
    for index, cell in enumerate(nb["cells"]):
        gid = _gid(cell)
        if not _is_solution(cell) or rng.random() > done:
            continue
        if cell["cell_type"] == "markdown":
            cell["source"] = " ".join(rng.choice(words) for _ in range(rng.randint(25, 60))).capitalize() + "."
        elif gid in pool:
            variant = rng.choices(pool[gid], weights=[1 / (1 + i) for i in range(len(pool[gid]))])[0]
            cell["source"] = _style(variant.source, rng)
            cell["outputs"] = _output(gid, variant, index)
    return nb


def _style(source: str, rng: random.Random) -> str:
    """A student's own habits: a comment here and there, a blank line."""
    lines = source.splitlines()
    for _ in range(rng.randint(0, 2)):
        at = rng.randint(0, len(lines))
        indent = re.match(r"\s*", lines[at - 1] if at and at <= len(lines) else "").group()
        lines.insert(at, indent + rng.choice(["# compute it", "", "# step", "# see the sheet", "# done"]))
    return "\n".join(lines)


def blank(release: dict, rng: random.Random, nearly: bool) -> dict:
    nb = copy.deepcopy(release)
    for cell in nb["cells"]:
        if _is_solution(cell) and cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "error", "ename": "NotImplementedError", "evalue": "",
                                "traceback": []}]
            if nearly and rng.random() < 0.3:
                cell["source"] = _source(cell).replace("raise NotImplementedError()", rng.choice(
                    ["pass", "result = None", "# TODO", "x = 0", "print('todo')"]))
    return nb


# ---------------------------------------------------------------- disguises


def _known(release: dict) -> set[str]:
    names = set(keyword.kwlist) | set(dir(builtins)) | {"self", "cls"}
    for cell in release["cells"]:
        if cell["cell_type"] == "code":
            names |= set(re.findall(r"[^\W\d]\w*", _source(cell)))
    return names


def _tokens(source: str):
    try:
        return list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def _bound(source: str) -> set[str]:
    """Names a cell binds: assigned variables, functions, classes, parameters, loop variables."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def rename(nb: dict, known: set[str], rng: random.Random) -> None:
    """Every name the student bound gets another one, the same in every cell (keyword
    arguments of calls and attributes keep theirs: renaming those would break the code)."""
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and _is_solution(c)]
    bound = set().union(*(_bound(_source(c)) for c in cells)) - known if cells else set()
    mapping: dict[str, str] = {}
    for cell in cells:
        source, tokens = _source(cell), _tokens(_source(cell))
        if tokens is None:
            continue
        starts = [0]
        for line in source.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        edits = []
        for i, tok in enumerate(tokens):
            after_dot = i and tokens[i - 1].string == "."
            keyword_argument = 0 < i < len(tokens) - 1 and tokens[i + 1].string == "=" and tokens[i - 1].string in "(,"
            if tok.type == tokenize.NAME and tok.string in bound and not after_dot and not keyword_argument:
                new = mapping.setdefault(tok.string, f"{rng.choice(NAMES)}_{len(mapping)}")
                offset = starts[tok.start[0] - 1] + tok.start[1]
                edits.append((offset, offset + len(tok.string), new))
        for start, end, new in reversed(edits):
            source = source[:start] + new + source[end:]
        cell["source"] = source


def reformat(nb: dict, rng: random.Random) -> None:
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or not _is_solution(cell):
            continue
        try:
            text = ast.unparse(ast.parse(_source(cell)))
        except SyntaxError:
            continue
        lines = text.splitlines()
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(lines))
            indent = re.match(r"\s*", lines[at - 1] if at else "").group()
            lines.insert(at, rng.choice(["", indent + "# my own approach", indent + "# works"]))
        cell["source"] = "\n".join(lines)


def reorder(nb: dict, rng: random.Random) -> None:
    """Solution cells change places; top-level functions within a cell swap."""
    positions = [i for i, c in enumerate(nb["cells"]) if _is_solution(c) and c["cell_type"] == "code"]
    moved = [nb["cells"][i] for i in positions]
    rng.shuffle(moved)
    for i, cell in zip(positions, moved):
        nb["cells"][i] = cell
    for cell in moved:
        try:
            tree = ast.parse(_source(cell))
        except SyntaxError:
            continue
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        if len(defs) >= 2 and all(d.end_lineno for d in defs):
            lines = _source(cell).splitlines()
            a, b = defs[0], defs[1]
            block_a, block_b = lines[a.lineno - 1:a.end_lineno], lines[b.lineno - 1:b.end_lineno]
            cell["source"] = "\n".join(lines[:a.lineno - 1] + block_b + lines[a.end_lineno:b.lineno - 1] + block_a
                                       + lines[b.end_lineno:])


def edit(nb: dict, rng: random.Random) -> None:
    """A few lines changed: a constant, a line added, a line removed; a few words of the answers."""
    code = [c for c in nb["cells"] if _is_solution(c) and c["cell_type"] == "code"
            and "NotImplementedError" not in _source(c)]
    for cell in rng.sample(code, min(3, len(code))):
        lines = _source(cell).splitlines()
        at = rng.randrange(len(lines))
        how = rng.choice(["constant", "add", "remove"])
        if how == "constant" and re.search(r"\d", lines[at]):
            lines[at] = re.sub(r"\d+", lambda m: str(int(m.group()) + 1), lines[at], count=1)
        elif how == "remove" and len(lines) > 3:
            del lines[at]
        else:
            indent = re.match(r"\s*", lines[at]).group()
            lines.insert(at + 1, indent + "print('checkpoint')")
        cell["source"] = "\n".join(lines)
        cell["outputs"] = []
    for cell in nb["cells"]:
        if _is_solution(cell) and cell["cell_type"] == "markdown":
            words = _source(cell).split()
            for _ in range(min(3, len(words))):
                words[rng.randrange(len(words))] = rng.choice(["indeed", "clearly", "so", "thus"])
            cell["source"] = " ".join(words)


def disguise(nb: dict, how: str, known: set[str], rng: random.Random) -> dict:
    nb = copy.deepcopy(nb)
    for step in how.split("+"):
        {"rename": lambda: rename(nb, known, rng), "reformat": lambda: reformat(nb, rng),
         "reorder": lambda: reorder(nb, rng), "edit": lambda: edit(nb, rng)}[step]()
    return nb


def build(assignment: str, students: int, copies: int, blanks: int, seed: int = 0) -> Class:
    """A class of ``students`` submissions: ``copies`` planted copies, ``blanks`` blank or nearly
    blank ones (half each), the rest honest."""
    rng = random.Random(seed)
    release = json.loads((ROOT / "release" / assignment / f"{assignment}.ipynb").read_text())
    pool, words, known = pools(assignment), _words(release), _known(release)
    result = Class()
    honest_count = students - copies - blanks
    for i in range(honest_count):
        result.notebooks[f"honest{i:03d}"] = honest(release, pool, words, rng)
    for i in range(blanks):
        name = f"blank{i:03d}"
        result.notebooks[name] = blank(release, rng, nearly=i % 2 == 1)
        result.blank.add(name)
    complete = [s for s in list(result.notebooks)[:honest_count] if _answered(result.notebooks[s]) >= 0.7]
    for i, original in enumerate(rng.sample(complete, copies)):
        how = DISGUISES[i % len(DISGUISES)]
        result.notebooks[f"copy{i:03d}"] = disguise(result.notebooks[original], how, known, rng)
        result.copies[f"copy{i:03d}"] = (original, how)
    return result


def _answered(nb: dict) -> float:
    solution = [c for c in nb["cells"] if _is_solution(c)]
    return sum("NotImplementedError" not in _source(c) and "YOUR ANSWER HERE" not in _source(c)
               for c in solution) / max(len(solution), 1)
