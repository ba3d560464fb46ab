"""Content stamps: skip work whose inputs have not changed since it was last done.

A stamp is a hash of files (names and contents) written next to the work's output;
the work is redone when the hash of its inputs no longer matches.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts
    )


def digest(paths: list[Path]) -> str:
    """A hash of the given files and folders: names and contents."""
    h = hashlib.sha256()
    for path in paths:
        for file in _files(path) if path.is_dir() else [path]:
            h.update(str(file.relative_to(path.parent)).encode())
            h.update(hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()


def matches(stamp_file: Path, value: str) -> bool:
    return stamp_file.exists() and stamp_file.read_text() == value


def record(stamp_file: Path, value: str) -> None:
    """Write the stamp atomically: a grader killed mid-write leaves the old stamp or none."""
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    partial = stamp_file.with_name(stamp_file.name + ".partial")
    partial.write_text(value)
    os.replace(partial, stamp_file)
