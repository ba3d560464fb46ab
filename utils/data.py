"""Loading the course's data files, with errors that say what to do.

Assignment data lives beside the notebook (nbgrader copies it into the
student's folder, the Colab setup cell copies it into the Colab working
directory). ``download`` fetches files for users who are online and refuses
any file whose checksum does not match.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
from pathlib import Path

import torch


class DataFileError(RuntimeError):
    pass


def load_tensor(path: str | Path) -> torch.Tensor:
    """Load a tensor saved with ``torch.save``, explaining what went wrong if it fails."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(
            f"{path} not found (looked in {path.resolve().parent}). It ships next to this "
            "notebook: run the notebook from its own folder, or on Colab run the setup cell first."
        )
    try:
        tensor = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise DataFileError(f"{path} could not be read as a tensor ({exc}); is it damaged?") from exc
    if not isinstance(tensor, torch.Tensor):
        raise DataFileError(f"{path} holds a {type(tensor).__name__}, not a tensor")
    return tensor


def md5sum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, path: str | Path, md5: str, timeout: float = 60) -> Path:
    """Download ``url`` to ``path`` unless a file with the right checksum is already there.

    The file is written under a temporary name and moved into place only after
    its checksum matched, so an interrupted or corrupted download never leaves
    a bad file behind.
    """
    path = Path(path)
    if path.exists():
        if md5sum(path) == md5:
            return path
        raise DataFileError(f"{path} exists but its md5 is not {md5}: delete it and try again")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, tmp)
        except OSError as exc:
            tmp.close()
            tmp_path.unlink(missing_ok=True)
            raise DataFileError(f"could not download {url}: {exc}") from exc
    actual = md5sum(tmp_path)
    if actual != md5:
        tmp_path.unlink(missing_ok=True)
        raise DataFileError(f"{url} has md5 {actual}, expected {md5}; the file was discarded")
    tmp_path.replace(path)
    return path
