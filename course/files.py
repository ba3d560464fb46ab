"""Files the course writes and compares: content stamps and atomic writes.

A stamp is a hash of files (names and contents) written next to the work's output;
the work is redone when the hash of its inputs no longer matches. Everything the grader
records is written atomically: a grader killed mid-write leaves the old file or none.
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
    """Write the stamp (atomically)."""
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(stamp_file, value)


def write_atomic(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file beside it: never half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
