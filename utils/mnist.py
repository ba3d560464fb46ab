"""MNIST without torchvision: the official IDX files, a Dataset, a fast tensor path, a digit grid.

torchvision's wheels cannot be installed next to the course's CPU torch, so this module
reads the four official files itself and gives students what they know from torchvision:

* ``MNIST(root, train=True, transform=None, download=False)``: a ``Dataset`` of
  ``(image, label)`` pairs, ``image`` a float32 tensor of shape (1, 28, 28) in [0, 1]
  (``transforms.ToTensor()``'s output), ``label`` a Python int. It works with
  ``DataLoader``, ``Subset`` and ``random_split``.
* ``TensorLoader``: the whole split as one normalised tensor on a device, cut into
  batches by indexing. For the same arguments (batch size, shuffle, generator, drop_last)
  it yields exactly, bit for bit, the batches of ``DataLoader(MNIST(...))``, because it
  draws its order from a ``DataLoader`` over the sample indices and that loader's sampler:
  the random numbers are consumed by the same code in the same order. Notebooks and hidden tests use it; it
  skips the per-sample Python work and the copy of every batch to the device.
* ``load_mnist()``: the training and test split, with the fallback rule every notebook
  shares. When the 60,000-image training split is absent and cannot be downloaded (no
  network, or ``COURSE_OFFLINE=1``), it trains on a fixed, stratified part of the 10,000
  test digits that ship with the course and evaluates on the rest, and prints so.
* ``show_digits(images, labels, predictions=None)``: the image grid that
  ``torchvision.utils.make_grid`` gave, in matplotlib, with labels and predictions.

Files are looked up as ``<root>/MNIST/raw/<name>`` (gzip or plain), torchvision's layout;
the official test split also ships inside this package (``utils/mnist_data``, CC BY-SA
3.0, attribution beside it), so a fresh clone without network runs every notebook.
Downloads go through ``utils.data.download``: checksum verified, written atomically, a
failure leaves nothing behind.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .data import DataFileError, download as download_file

# Set COURSE_OFFLINE=1 to forbid downloads (tests, CI, grading machines): the loaders then
# use what is on disk and the shipped test split.
OFFLINE_VARIABLE = "COURSE_OFFLINE"
# Where the data goes when no root is given (COURSE_DATA overrides it).
DATA_VARIABLE = "COURSE_DATA"

SHIPPED = Path(__file__).resolve().parent / "mnist_data"

# The four official files and their md5 (the checksums torchvision and the original
# release publish). Mirrors are tried in order.
FILES = {
    ("train", "images"): ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# IDX header: two zero bytes, a type code, the number of dimensions; then one big-endian
# uint32 per dimension. MNIST uses only unsigned bytes (0x08).
_UBYTE = 0x08
_EXPECTED = {"images": (3, (28, 28)), "labels": (1, ())}

# The fallback: this share of every digit class of the test split is trained on.
FALLBACK_TRAIN_FRACTION = 0.8
FALLBACK_SEED = 0


def default_root() -> Path:
    return Path(os.environ.get(DATA_VARIABLE) or Path.home() / ".cache" / "pytorch-course" / "data")


def offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip() not in ("", "0")


# ----------------------------------------------------------------------------- IDX files


def read_idx(path: str | Path, kind: str | None = None) -> torch.Tensor:
    """Read an IDX file (gzip or plain) into a uint8 tensor, checking its header and size.

    ``kind`` ("images" or "labels") also checks the number of dimensions and the image size.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataFileError(f"{path} not found") from None
    except (OSError, EOFError) as exc:
        raise DataFileError(f"{path} could not be decompressed ({exc}); delete it and download it again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataFileError(f"{path} is not an IDX file (bad magic number); delete it and download it again")
    if raw[2] != _UBYTE:
        raise DataFileError(f"{path} holds IDX type {raw[2]:#04x}, not unsigned bytes (0x08) as MNIST does")
    ndim = raw[3]
    if kind is not None and ndim != _EXPECTED[kind][0]:
        raise DataFileError(f"{path} has {ndim} dimensions; MNIST {kind} have {_EXPECTED[kind][0]}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path} is truncated inside its header; delete it and download it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if kind is not None and shape[1:] != _EXPECTED[kind][1]:
        raise DataFileError(f"{path} holds items of shape {shape[1:]}; MNIST {kind} are {_EXPECTED[kind][1]}")
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        problem = "is truncated" if len(raw) - header < size else "has extra bytes"
        raise DataFileError(f"{path} {problem}: its header promises {size} bytes of data; delete it and download it again")
    data = np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(shape)
    return torch.from_numpy(data.copy())


def _candidates(root: Path, name: str) -> list[Path]:
    raw = root / "MNIST" / "raw"
    return [raw / name, raw / name.removesuffix(".gz")]


def find_file(root: str | Path, split: str, kind: str) -> Path | None:
    """Where the file of ``split`` ("train"/"test") and ``kind`` is: under root, else shipped."""
    name, _ = FILES[(split, kind)]
    for path in [*_candidates(Path(root), name), SHIPPED / name]:
        if path.exists():
            return path
    return None


def download_split(root: str | Path, split: str, mirrors: Sequence[str] | None = None) -> None:
    """Download the images and labels of ``split`` into ``<root>/MNIST/raw``, trying each mirror.

    Raises DataFileError naming every mirror that failed and what to do; a failed
    attempt leaves no file behind (``utils.data.download`` writes atomically).
    """
    raw = Path(root) / "MNIST" / "raw"
    mirrors = MIRRORS if mirrors is None else mirrors
    for kind in ("images", "labels"):
        name, md5 = FILES[(split, kind)]
        if find_file(root, split, kind) is not None:
            continue
        errors = []
        for mirror in mirrors:
            try:
                download_file(mirror + name, raw / name, md5=md5)
                break
            except DataFileError as exc:
                errors.append(str(exc))
        else:
            raise DataFileError(
                f"could not download {name} from any mirror:\n  " + "\n  ".join(errors)
                + f"\nDownload it by hand into {raw} (md5 {md5}), or work offline with the shipped test split."
            )


@cache
def _read_cached(path: Path, kind: str, mtime: float) -> torch.Tensor:
    return read_idx(path, kind)


def load_split(root: str | Path | None = None, train: bool = True, download: bool | None = None):
    """The uint8 images (N, 28, 28) and int64 labels (N,) of one split.

    ``download=None`` downloads missing files unless COURSE_OFFLINE is set.
    """
    root = Path(root) if root is not None else default_root()
    split = "train" if train else "test"
    if download is None:
        download = not offline()
    if download and any(find_file(root, split, k) is None for k in ("images", "labels")):
        download_split(root, split)
    tensors = {}
    for kind in ("images", "labels"):
        path = find_file(root, split, kind)
        if path is None:
            name, md5 = FILES[(split, kind)]
            raise DataFileError(
                f"MNIST {split} {kind} not found: looked for {name} in {root / 'MNIST' / 'raw'}. "
                "Pass download=True (needs network), or copy the file there "
                f"(md5 {md5}); offline, use load_mnist(), which falls back to the shipped test split."
            )
        # A copy, so that a notebook changing its dataset in place cannot change the next one.
        tensors[kind] = _read_cached(path.resolve(), kind, path.stat().st_mtime).clone()
    images, labels = tensors["images"], tensors["labels"].long()
    if len(images) != len(labels):
        raise DataFileError(f"MNIST {split}: {len(images)} images but {len(labels)} labels; are the files from one release?")
    if int(labels.max()) > 9:
        raise DataFileError(f"MNIST {split} labels go beyond 9; is the labels file damaged?")
    return images, labels


# ----------------------------------------------------------------------------- Dataset


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (..., 28, 28) -> float32 (..., 1, 28, 28) in [0, 1], as ToTensor() makes them."""
    return images.unsqueeze(-3).to(torch.float32).div(255)


class MNIST(Dataset):
    """MNIST digits as torchvision's ``datasets.MNIST(..., transform=ToTensor())`` gives them.

    ``dataset[i]`` is ``(image, label)``: ``image`` float32 (1, 28, 28) in [0, 1] passed
    through ``transform`` if given, ``label`` a Python int (through ``target_transform``).
    """

    classes = [f"{d} - {w}" for d, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]

    def __init__(self, root: str | Path | None = None, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool | None = None):
        self.train = train
        self.data, self.targets = load_split(root, train=train, download=download)
        self.transform = transform
        self.target_transform = target_transform

    @classmethod
    def from_tensors(cls, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> MNIST:
        """A dataset over given uint8 images (N, 28, 28) and labels (N,), e.g. a part of a split."""
        dataset = cls.__new__(cls)
        dataset.train, dataset.data, dataset.targets = None, images, labels.long()
        dataset.transform, dataset.target_transform = transform, None
        return dataset

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image = to_float(self.data[index])
        label = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __repr__(self) -> str:
        split = {True: "train", False: "test", None: "part"}[self.train]
        return f"MNIST({split}, {len(self)} digits)"


def _source(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images and labels behind an MNIST dataset or a (nested) Subset of one."""
    if isinstance(dataset, Subset):
        images, labels = _source(dataset.dataset)
        index = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return images[index], labels[index]
    if isinstance(dataset, MNIST):
        if dataset.transform is not None:
            raise ValueError("the tensor path applies no transform: build it from a dataset without one")
        return dataset.data, dataset.targets
    raise TypeError(f"expected an MNIST dataset or a Subset of one, not {type(dataset).__name__}")


def as_tensors(dataset, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole dataset as float32 images (N, 1, 28, 28) in [0, 1] and int64 labels (N,) on ``device``.

    Exactly the values ``dataset[i]`` gives, stacked.
    """
    images, labels = _source(dataset)
    return to_float(images.to(device)), labels.to(device)


# ----------------------------------------------------------------------------- fast loader


class TensorLoader:
    """Batches of tensors already on their device, in exactly DataLoader's order.

    ``TensorLoader(images, labels, batch_size, shuffle, generator, drop_last)`` yields
    ``(images[idx], labels[idx])``. Its order comes from a ``DataLoader`` over
    ``range(len(images))`` with the same arguments (its iterator's seeds, then its
    sampler's permutation), so it consumes the generator (or the global RNG) exactly as
    ``DataLoader(dataset, ...)`` does and gives the same batches.
    Unshuffled batches are slices (no copy). ``len(loader)`` is the number of batches and
    ``loader.dataset`` a TensorDataset of all samples, as for a DataLoader.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1, shuffle: bool = False,
                 generator: torch.Generator | None = None, drop_last: bool = False):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.dataset = TensorDataset(images, labels)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = generator
        self._order = DataLoader(range(len(images)), batch_size=batch_size, shuffle=shuffle, generator=generator,
                                 drop_last=drop_last)

    @classmethod
    def from_dataset(cls, dataset, device: torch.device | str | None = None, **loader_args) -> TensorLoader:
        """The fast twin of ``DataLoader(dataset, **loader_args)`` for an MNIST dataset or Subset."""
        return cls(*as_tensors(dataset, device), **loader_args)

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Creating a DataLoader iterator draws its base seeds (from the generator, else the
        # global RNG), shuffled or not; its sampler then draws the permutation. Doing both
        # in that order consumes the random numbers exactly as DataLoader(dataset) does,
        # without fetching and collating the indices one by one.
        iter(self._order)
        n = len(self.images)
        if self.shuffle:
            order = torch.tensor(list(self._order.sampler), dtype=torch.long).to(self.images.device)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            if self.shuffle:
                index = order[start:start + self.batch_size]
                yield self.images[index], self.labels[index]
            else:  # slices: views, no copy
                yield self.images[start:start + self.batch_size], self.labels[start:start + self.batch_size]


# ----------------------------------------------------------------------------- fallback


def stratified_split(labels: torch.Tensor, train_fraction: float = FALLBACK_TRAIN_FRACTION,
                     seed: int = FALLBACK_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted indices (train, test): ``train_fraction`` of every class to train, the rest to test.

    Fixed by ``seed`` (its own generator, so the global RNG is untouched).
    """
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for digit in labels.unique(sorted=True):
        members = (labels == digit).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_train = round(train_fraction * len(members))
        train.append(members[:n_train])
        test.append(members[n_train:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


@dataclass
class Splits:
    """The data a notebook trains and evaluates on, and where it came from."""

    train: Dataset
    test: Dataset
    fallback: bool  # True: both parts are cut from the official test split
    reason: str = ""  # why the training split was not used

    def describe(self) -> str:
        if self.fallback:
            why = "downloads are off" if "not found" in self.reason else "the download failed"
            return (f"NOTE: the 60,000-digit MNIST training split is not available ({why}). Training on "
                    f"{len(self.train):,} digits and evaluating on the other {len(self.test):,}, a fixed stratified "
                    "split of the official 10,000-digit test split. Results are lower than with the full data.")
        return f"MNIST: training on {len(self.train):,} digits, evaluating on {len(self.test):,}."


def load_mnist(root: str | Path | None = None, download: bool | None = None, verbose: bool = True) -> Splits:
    """The training and test data every MNIST notebook uses, with the shared fallback rule.

    Uses the official training split when it is on disk or can be downloaded (``download``:
    None means "unless COURSE_OFFLINE is set"). Otherwise trains on a fixed stratified 80 %
    of the official test split and evaluates on the remaining 20 %, and prints so.
    """
    test = MNIST(root, train=False, download=download)
    try:
        train = MNIST(root, train=True, download=download)
    except DataFileError as exc:
        reason = str(exc)
        train_index, test_index = stratified_split(test.targets)
        splits = Splits(Subset(test, train_index.tolist()), Subset(test, test_index.tolist()), True, reason)
    else:
        splits = Splits(train, test, fallback=False)
    if verbose:
        print(splits.describe())
    return splits


# ----------------------------------------------------------------------------- digit grid


def show_digits(images, labels=None, predictions=None, ncols: int = 8, title: str | None = None, size: float = 1.0):
    """Draw digits in a grid, each titled with its label (and prediction); return (fig, ax).

    ``images``: (N, 28, 28), (N, 1, 28, 28) or (N, 784), tensor or array, any device.
    A wrong prediction is titled in red, as "3, predicted 5". Like
    ``torchvision.utils.make_grid``, the digits are pasted into one image (one panel, one
    ``imshow``), which draws far faster than one panel per digit; the titles are the
    panel's texts (``ax.texts``), in the order of the images.
    """
    import matplotlib.pyplot as plt

    images = torch.as_tensor(images.detach().cpu() if hasattr(images, "detach") else np.asarray(images))
    images = images.float().reshape(len(images), 28, 28)
    n = len(images)
    if n == 0:
        raise ValueError("show_digits needs at least one image")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values is not None and len(values) != n:
            raise ValueError(f"{n} images but {len(values)} {name}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    gap_x, gap_y = 4, 12 if labels is not None or predictions is not None else 4  # room for the titles
    cell_w, cell_h = 28 + gap_x, 28 + gap_y
    canvas = np.zeros((nrows * cell_h, ncols * cell_w), dtype=np.float32)
    corners = []
    for i in range(n):
        row, col = divmod(i, ncols)
        top, left = row * cell_h + gap_y, col * cell_w + gap_x // 2
        canvas[top:top + 28, left:left + 28] = images[i].numpy()
        corners.append((top, left))
    fig, ax = plt.subplots(figsize=(size * ncols * cell_w / 32, size * nrows * cell_h / 32 + 0.4 * bool(title)))
    ax.imshow(canvas, cmap="gray_r", vmin=0.0, vmax=max(1.0, float(canvas.max())), interpolation="nearest")
    ax.axis("off")
    for i, (top, left) in enumerate(corners):
        label = None if labels is None else int(labels[i])
        predicted = None if predictions is None else int(predictions[i])
        if label is None and predicted is None:
            continue
        wrong = label is not None and predicted is not None and predicted != label
        if predicted is None:
            text = str(label)
        elif label is None:
            text = f"predicted {predicted}"
        else:
            text = f"{label}, predicted {predicted}" if wrong else str(label)
        ax.text(left + 14, top - 1.5, text, ha="center", va="bottom", fontsize=7 if wrong else 8,
                color="red" if wrong else "black")
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9 if title else 0.99)
    return fig, ax
