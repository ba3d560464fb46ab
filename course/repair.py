"""Put back nbgrader's cell metadata that an editor stripped, by matching cells to the release.

Colab and some editors drop cell metadata on save. nbgrader then no longer knows which
cells are tests or answers, and such a submission scored 0 without a word. Here each
cell of the released notebook that the submission lacks is matched, on a copy of the
submission, by cell id, then (locked cells) by identical source, then (answer cells) by
position: the one unlabelled cell of the same type between the matched neighbours.
What cannot be matched is reported, never guessed.
"""

from __future__ import annotations

import copy

from nbgrader import utils


def _gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def restore_metadata(nb, release) -> tuple[list[str], list[str]]:
    """(grade ids restored, grade ids still missing); ``nb`` is changed in place."""
    wanted = [c for c in release.cells if _gid(c)]
    present = {_gid(c) for c in nb.cells if _gid(c)}
    missing = [c for c in wanted if _gid(c) not in present]
    restored = []

    def label(cell, ref):
        cell.metadata["nbgrader"] = copy.deepcopy(dict(ref.metadata["nbgrader"]))
        restored.append(_gid(ref))

    for ref in missing:
        free = [c for c in nb.cells if not _gid(c) and c.cell_type == ref.cell_type]
        same = [c for c in free if c.get("id") and c.get("id") == ref.get("id")]
        if not same and not utils.is_solution(ref):
            same = [c for c in free if c.source.strip() == ref.source.strip()]
        if same:
            label(same[0], ref)
    order = [_gid(c) for c in wanted]
    for ref in missing:
        if _gid(ref) in restored:
            continue
        i = order.index(_gid(ref))
        where = {_gid(c): n for n, c in enumerate(nb.cells) if _gid(c)}
        before = where.get(order[i - 1], -1) if i > 0 else -1
        after = where.get(order[i + 1], len(nb.cells)) if i + 1 < len(order) else len(nb.cells)
        if (i > 0 and order[i - 1] not in where) or (i + 1 < len(order) and order[i + 1] not in where):
            continue
        between = [c for c in nb.cells[before + 1:after] if not _gid(c) and c.cell_type == ref.cell_type]
        if len(between) == 1:
            label(between[0], ref)
    still = [_gid(c) for c in missing if _gid(c) not in restored]
    return restored, still


def deduplicate(nb) -> list[str]:
    """Grade ids that appear more than once: the first cell keeps its metadata, copies lose it
    (a copied test cell would otherwise count twice, or make nbgrader refuse the notebook)."""
    seen, dropped = set(), []
    for cell in nb.cells:
        gid = _gid(cell)
        if gid and gid in seen:
            cell.metadata = {k: v for k, v in cell.metadata.items() if k != "nbgrader"}
            dropped.append(gid)
        elif gid:
            seen.add(gid)
    return sorted(set(dropped))
