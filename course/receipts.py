"""Receipts: what each recorded grade was computed from, so that anyone can reproduce it.

The recording (course/engine/recording.py) writes one receipt per recorded grade,
``autograded/<student>/<assignment>/receipt.json``:

* ``inputs``: hashes of everything that decides the score: the submitted notebooks, the
  assignment's ``source/`` folder, ``hidden_tests/``, the helper code the notebooks import
  (``utils/``, ``plot_loss.py``, ``convert_net.py``), the grader's own code (``course/``),
  ``nbgrader_config.py``, and the pinned environment (``requirements.txt`` together with the
  interpreter that ran the kernel);
* ``run``: how the kernel ran, as the grading worker reports it: the device (the CPU: the
  sandbox shows the kernel no GPU and the grader sets ``COURSE_DEVICE=cpu``), its threads,
  the hash seed (``PYTHONHASHSEED``, fixed by the grader; every other seed is set by the
  notebook and the hidden tests themselves), the machine, its CPU and Python;
* ``cells``: notebook -> grade id -> the autograder's score of each autograded cell (a bonus
  cell's extra credit included), as this run produced it: before any review decision or
  score a person wrote over it;
* ``flags``: why the run was flagged for review (empty when it was not).

The gradebook holds the grade in force (course/gradebook.py); a receipt holds what the
autograder gave for these inputs, which ``course verify`` reproduces: the same inputs must
give the identical scores. ``id`` is a hash of all of it but the time, so two runs that
agree in everything have the same id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from .config import HELPERS, PRIVATE_HELPERS, Layout
from .files import digest, write_atomic

VERSION = 1
# What the receipt hashes, in the order it prints them: name -> what it is.
INPUTS = {
    "submission": "the submitted notebooks",
    "source": "the assignment's source/ folder",
    "hidden_tests": "hidden_tests/",
    "helpers": "the helper code notebooks import",
    "grader": "the grader's code (course/)",
    "nbgrader_config": "nbgrader_config.py",
    "environment": "requirements.txt and the interpreter",
}
RUN = ("device", "threads", "hash_seed", "python", "machine", "cpu")


def _hash(paths: list[Path]) -> str:
    present = [p for p in paths if p.exists()]
    return digest(present) if present else ""


def submission_hash(layout: Layout, student: str, assignment: str) -> str:
    """The hash of the notebooks a student handed in (other files are never graded)."""
    handed_in = layout.submission(student, assignment)
    return _hash(sorted(p for p in handed_in.glob("*.ipynb") if p.is_file() and not p.is_symlink()))


def input_hashes(root: Path, student: str, assignment: str, python: str) -> dict[str, str]:
    """The hashes of a submission's grading inputs in the course at ``root``, as they are now;
    ``python`` names the interpreter that ran the kernel."""
    layout = Layout(root)
    requirements = root / "requirements.txt"
    pins = requirements.read_bytes() if requirements.is_file() else b""
    return {
        "submission": submission_hash(layout, student, assignment),
        "source": _hash([layout.source / assignment]),
        "hidden_tests": _hash([root / name for name in PRIVATE_HELPERS]),
        "helpers": _hash([root / name for name in HELPERS if name not in PRIVATE_HELPERS]),
        "grader": _hash([root / "course"]),
        "nbgrader_config": _hash([root / "nbgrader_config.py"]),
        "environment": hashlib.sha256(pins + b"\0" + python.encode()).hexdigest(),
    }


def make(root: Path, student: str, assignment: str, cells: dict[str, dict[str, float]], flags: list[str],
         run: dict[str, str], handed_in: str = "", variant: str = "") -> dict:
    """A receipt (see the module docstring); ``handed_in``: the submission time, if known;
    ``variant``: which per-student variant was graded (course/variants.py ``graded``)."""
    body = {
        "version": VERSION, "student": student, "assignment": assignment,
        "inputs": input_hashes(root, student, assignment, run.get("python", "")),
        "run": {key: str(run.get(key, "")) for key in RUN},
        "cells": cells, "flags": list(flags), "handed_in": handed_in,
    }
    if variant:  # absent for an assignment without variants: such receipts stay as they were
        body["variant"] = variant
    return {"id": identity(body), **body,
            "graded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def identity(receipt: dict) -> str:
    """The hash of everything in a receipt but its id and time."""
    body = {k: v for k, v in receipt.items() if k not in ("id", "graded_at")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write(layout: Layout, receipt: dict) -> Path:
    path = layout.receipt(receipt["student"], receipt["assignment"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(receipt, indent=1) + "\n")
    return path


def read(layout: Layout, student: str, assignment: str) -> dict | None:
    """The receipt of a recorded grade, or None (never graded, or graded before receipts, or a
    file that is not one)."""
    path = layout.receipt(student, assignment)
    if not path.is_file() or path.is_symlink():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    fields = {"id", "student", "assignment", "inputs", "run", "cells", "flags"}
    return data if isinstance(data, dict) and fields <= set(data) else None


def remove(layout: Layout, student: str, assignment: str) -> None:
    path = layout.receipt(student, assignment)
    if path.is_file() or path.is_symlink():
        path.unlink()


def short(receipt: dict) -> str:
    """The short form: the id's first 12 characters and when it was graded."""
    return f"{receipt['id'][:12]} (graded {receipt.get('graded_at', '?')})"


def total(receipt: dict) -> float:
    """The autograded points the run gave (extra credit of bonus cells included)."""
    return sum(score for cells in receipt["cells"].values() for score in cells.values())


def changed_inputs(old: dict, new: dict) -> list[str]:
    """The inputs whose hashes differ between two receipts of one submission."""
    return [name for name in INPUTS if old["inputs"].get(name) != new["inputs"].get(name)]


def changed_cells(old: dict, new: dict) -> dict[str, tuple[float | None, float | None]]:
    """``notebook/grade id`` -> (old score, new score) for every cell the two receipts score apart."""
    keys = [(nb, gid) for nb, cells in old["cells"].items() for gid in cells]
    keys += [(nb, gid) for nb, cells in new["cells"].items() for gid in cells if (nb, gid) not in keys]
    found = {}
    for nb, gid in keys:
        before, after = old["cells"].get(nb, {}).get(gid), new["cells"].get(nb, {}).get(gid)
        if before != after:
            found[f"{nb}/{gid}"] = (before, after)
    return found


def text(receipt: dict) -> str:
    """The receipt as ``course receipt`` prints it."""
    lines = [f"receipt {receipt['id']}",
             f"  {receipt['student']}/{receipt['assignment']}, graded {receipt.get('graded_at', '?')}"
             + (f", handed in {receipt['handed_in']}" if receipt.get("handed_in") else ""),
             "inputs (sha256):"]
    lines += [f"  {name:<16} {receipt['inputs'].get(name) or '(none)'}  {about}" for name, about in INPUTS.items()]
    lines.append("run:")
    lines += [f"  {key:<16} {receipt['run'].get(key, '')}" for key in RUN]
    if receipt.get("variant"):
        lines.append(f"variant graded: {receipt['variant']}")
    lines.append(f"autograded cells (total {total(receipt):g}):")
    for nb, cells in receipt["cells"].items():
        lines += [f"  {nb}/{gid:<24} {score:g}" for gid, score in cells.items()]
    lines.append("flags: " + ("none" if not receipt["flags"] else ""))
    lines += [f"  - {flag}" for flag in receipt["flags"]]
    return "\n".join(lines)
