"""Put back what an editor or a student changed in the cells the course registered.

* ``restore_metadata``: Colab and some editors drop cell metadata on save. nbgrader then no
  longer knows which cells are tests or answers, and such a submission scored 0 without a
  word. Here each cell of the released notebook that the submission lacks is matched, on a
  copy of the submission, by cell id, then (locked cells) by identical source, then (answer
  cells) by position: the one unlabelled cell of the same type between the matched
  neighbours. What cannot be matched is reported, never guessed.
* ``deduplicate``: a copied test cell would count twice (or make nbgrader refuse the notebook).
* ``put_back``: a locked cell the submission lacks (a test cell deleted, by accident or not)
  is put back from the instructor's notebook at its place, so it runs and scores what the
  student's answers earn, instead of scoring nothing (or, on a regrade, keeping an old score).
* ``overwrite_registered``: every cell with a grade id gets its type, lock, points and (when
  locked: tests, provided code) its source back from the instructor's notebook, as nbgrader's
  ``OverwriteCells`` does from the gradebook, so that the run executes the registered checks.
"""

from __future__ import annotations

import copy

from .. import cells


def restore_metadata(nb, release) -> tuple[list[str], list[str]]:
    """(grade ids restored, grade ids still missing); ``nb`` is changed in place."""
    gid = cells.grade_id
    wanted = [c for c in release.cells if gid(c)]
    present = {gid(c) for c in nb.cells if gid(c)}
    missing = [c for c in wanted if gid(c) not in present]
    restored = []

    def label(cell, ref):
        cell.metadata["nbgrader"] = copy.deepcopy(dict(ref.metadata["nbgrader"]))
        restored.append(gid(ref))

    for ref in missing:
        free = [c for c in nb.cells if not gid(c) and c.cell_type == ref.cell_type]
        same = [c for c in free if c.get("id") and c.get("id") == ref.get("id")]
        if not same and not cells.is_solution(ref):
            same = [c for c in free if c.source.strip() == ref.source.strip()]
        if same:
            label(same[0], ref)
    order = [gid(c) for c in wanted]
    for ref in missing:
        if gid(ref) in restored:
            continue
        i = order.index(gid(ref))
        where = {gid(c): n for n, c in enumerate(nb.cells) if gid(c)}
        if (i > 0 and order[i - 1] not in where) or (i + 1 < len(order) and order[i + 1] not in where):
            continue
        before = where[order[i - 1]] if i > 0 else -1
        after = where[order[i + 1]] if i + 1 < len(order) else len(nb.cells)
        between = [c for c in nb.cells[before + 1:after] if not gid(c) and c.cell_type == ref.cell_type]
        if len(between) == 1:
            label(between[0], ref)
    still = [gid(c) for c in missing if gid(c) not in restored]
    return restored, still


def deduplicate(nb) -> list[str]:
    """Grade ids that appear more than once: the first cell keeps its metadata, copies lose it
    (a copied test cell would otherwise count twice, or make nbgrader refuse the notebook)."""
    seen, dropped = set(), []
    for cell in nb.cells:
        gid = cells.grade_id(cell)
        if gid and gid in seen:
            cell.metadata = {k: v for k, v in cell.metadata.items() if k != "nbgrader"}
            dropped.append(gid)
        elif gid:
            seen.add(gid)
    return sorted(set(dropped))


def put_back(nb, source_nb) -> list[str]:
    """Put every locked cell of the instructor's notebook that ``nb`` lacks (tests, provided
    code) back in place: after the registered cell that precedes it in the instructor's
    notebook, else before the one that follows it. Returns the grade ids put back."""
    gid = cells.grade_id
    order = [c for c in source_nb.cells if gid(c)]
    present = {gid(c) for c in nb.cells if gid(c)}
    ids = {c.get("id") for c in nb.cells}
    added = []
    for i, ref in enumerate(order):
        if gid(ref) in present or not cells.is_locked(ref) or cells.is_solution(ref):
            continue
        where = {gid(c): n for n, c in enumerate(nb.cells) if gid(c)}
        before = next((where[gid(c)] + 1 for c in reversed(order[:i]) if gid(c) in where), None)
        after = next((where[gid(c)] for c in order[i + 1:] if gid(c) in where), len(nb.cells))
        cell = copy.deepcopy(ref)
        if cell.get("id") in ids:
            cell["id"] = f"{gid(ref)}-put-back"[:64]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nb.cells.insert(after if before is None else before, cell)
        present.add(gid(ref))
        ids.add(cell.get("id"))
        added.append(gid(ref))
    return added


def overwrite_registered(nb, source_nb) -> list[str]:
    """Give every cell with a grade id the registered type, metadata and (locked) source of
    the instructor's cell; a grade id the instructor's notebook lacks loses its metadata.
    Returns the grade ids dropped."""
    registered = {cells.grade_id(c): c for c in source_nb.cells if cells.grade_id(c)}
    dropped = []
    for cell in nb.cells:
        gid = cells.grade_id(cell)
        if gid is None:
            continue
        ref = registered.get(gid)
        if ref is None:
            cell.metadata = {k: v for k, v in cell.metadata.items() if k != "nbgrader"}
            dropped.append(gid)
            continue
        if cell.cell_type != ref.cell_type:
            _set_type(cell, ref.cell_type)
        cell.metadata["nbgrader"] = copy.deepcopy(dict(ref.metadata["nbgrader"]))
        if cells.is_locked(ref):
            cell.source = ref.source
    return dropped


def _set_type(cell, cell_type: str) -> None:
    cell.cell_type = cell_type
    if cell_type == "code":
        cell.setdefault("outputs", [])
        cell.setdefault("execution_count", None)
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
