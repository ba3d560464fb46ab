"""utils.mnist: IDX parsing, the Dataset, the fast loader's equality with DataLoader, the
fallback rule, downloads (file:// URLs only, never the network) and the digit grid."""

from __future__ import annotations

import gzip
import hashlib
import struct

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, random_split

from utils import mnist
from utils.data import DataFileError
from utils.mnist import (
    FILES, MNIST, SHIPPED, TensorLoader, as_tensors, download_split, load_mnist, load_split, read_idx,
    show_digits, stratified_split,
)

# The official test split's class counts (from the data's own documentation, not this code).
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(root, split, images, labels, gz=True):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images", images), ("labels", labels)):
        name = FILES[(split, kind)][0]
        data = idx_bytes(array)
        if gz:
            (raw / name).write_bytes(gzip.compress(data))
        else:
            (raw / name.removesuffix(".gz")).write_bytes(data)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv(mnist.OFFLINE_VARIABLE, "1")


@pytest.fixture
def tiny_root(tmp_path):
    """A root with a synthetic 'train' split of 50 digits: 5 per class, pixel values known."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 5)
    rng.shuffle(labels)
    write_split(tmp_path, "train", images, labels)
    return tmp_path, images, labels


# ----------------------------------------------------------------------------- shipped data


def test_the_shipped_test_split_is_the_official_one():
    for (split, kind), (name, md5) in FILES.items():
        if split == "test":
            assert hashlib.md5((SHIPPED / name).read_bytes()).hexdigest() == md5
    assert "Creative Commons Attribution-Share Alike 3.0" in (SHIPPED / "README.md").read_text()
    images, labels = load_split(SHIPPED.parent / "no-such-root", train=False, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == TEST_COUNTS


# ----------------------------------------------------------------------------- IDX files


def test_read_idx_reads_gzip_and_plain_files_alike(tmp_path):
    array = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    for name in ("a", "a.gz"):
        result = read_idx(tmp_path / name, "images")
        assert result.dtype == torch.uint8
        assert np.array_equal(result.numpy(), array)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x08\x03" + b[2:], "bad magic"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "not unsigned bytes"),
    (lambda b: b[:3] + b"\x02" + b[4:], "2 dimensions"),
    (lambda b: b[:-10], "truncated"),
    (lambda b: b + b"xx", "extra bytes"),
    (lambda b: b[:9], "truncated inside its header"),
])
def test_read_idx_rejects_damaged_files_with_a_clear_message(tmp_path, damage, message):
    path = tmp_path / "images"
    path.write_bytes(damage(idx_bytes(np.zeros((3, 28, 28)))))
    with pytest.raises(DataFileError, match=message):
        read_idx(path, "images")


def test_read_idx_checks_image_size_and_broken_gzip(tmp_path):
    (tmp_path / "small").write_bytes(idx_bytes(np.zeros((3, 20, 20))))
    with pytest.raises(DataFileError, match=r"\(20, 20\)"):
        read_idx(tmp_path / "small", "images")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((3, 28, 28))))[:-20])
    with pytest.raises(DataFileError, match="could not be decompressed"):
        read_idx(tmp_path / "broken.gz", "images")


def test_mismatched_image_and_label_counts_are_reported(tmp_path):
    write_split(tmp_path, "train", np.zeros((4, 28, 28)), np.zeros(3))
    with pytest.raises(DataFileError, match="4 images but 3 labels"):
        load_split(tmp_path, train=True, download=False)


# ----------------------------------------------------------------------------- Dataset


def test_dataset_gives_what_torchvision_gives(tiny_root):
    root, images, labels = tiny_root
    data = MNIST(root, train=True, download=False)
    assert len(data) == 50
    image, label = data[7]
    assert type(label) is int and label == labels[7]
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28)
    assert torch.equal(image[0], torch.tensor(images[7], dtype=torch.float32) / 255)
    assert 0 <= image.min() and image.max() <= 1


def test_dataset_plain_files_and_transforms(tmp_path):
    images = np.full((2, 28, 28), 255)
    write_split(tmp_path, "train", images, np.array([3, 4]), gz=False)
    data = MNIST(tmp_path, transform=lambda x: x * 2 - 1, target_transform=lambda y: y + 10, download=False)
    image, label = data[1]
    assert label == 14 and torch.all(image == 1.0)


def test_dataset_works_with_dataloader_subset_and_random_split(tiny_root):
    root, images, labels = tiny_root
    data = MNIST(root, download=False)
    x, y = next(iter(DataLoader(data, batch_size=32)))
    assert x.shape == (32, 1, 28, 28) and y.dtype == torch.int64
    assert y.tolist() == labels[:32].tolist()
    part = Subset(data, [3, 1])
    assert part[1][1] == labels[1]
    first, second = random_split(data, [40, 10], generator=torch.Generator().manual_seed(0))
    assert len(first) == 40 and len(second) == 10
    assert sorted(first.indices + second.indices) == list(range(50))


def test_a_missing_split_says_what_to_do(tmp_path, offline):
    with pytest.raises(DataFileError, match="download=True.*load_mnist"):
        MNIST(tmp_path, train=True)


# ----------------------------------------------------------------------------- fast path


def batches_equal(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) and xa.dtype == xb.dtype and ya.dtype == yb.dtype
        for (xa, ya), (xb, yb) in zip(a, b))


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("use_generator", [False, True])
def test_tensor_loader_yields_exactly_the_dataloader_batches(shuffle, drop_last, use_generator):
    test = MNIST(train=False, download=False)
    part = Subset(test, list(range(0, 1000, 3)))  # 334 digits: a last, partial batch of 14
    args = dict(batch_size=32, shuffle=shuffle, drop_last=drop_last)
    torch.manual_seed(1)
    expected = list(DataLoader(part, generator=torch.Generator().manual_seed(7) if use_generator else None, **args))
    after_expected = torch.rand(3)
    torch.manual_seed(1)
    fast = TensorLoader.from_dataset(part, generator=torch.Generator().manual_seed(7) if use_generator else None,
                                     **args)
    got = list(fast)
    after_got = torch.rand(3)
    assert batches_equal(expected, got)
    assert len(fast) == len(expected) == (10 if drop_last else 11)
    assert torch.equal(after_expected, after_got), "both paths must consume the global RNG alike"
    assert len(fast.dataset) == 334


def test_tensor_loader_reshuffles_every_epoch_like_dataloader():
    part = Subset(MNIST(train=False, download=False), range(200))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    slow = DataLoader(part, batch_size=64, shuffle=True, generator=g1)
    fast = TensorLoader.from_dataset(part, batch_size=64, shuffle=True, generator=g2)
    epochs_slow = [list(slow) for _ in range(2)]
    epochs_fast = [list(fast) for _ in range(2)]
    assert not torch.equal(epochs_fast[0][0][1], epochs_fast[1][0][1]), "a second epoch is shuffled anew"
    for s, f in zip(epochs_slow, epochs_fast):
        assert batches_equal(s, f)


@pytest.fixture
def one_thread():
    # With several threads, MKL may change how it splits a matrix product when the machine
    # is loaded, and with it the rounding: the same path then differs from itself.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_on_both_paths_gives_bitwise_identical_losses(one_thread):
    part = Subset(MNIST(train=False, download=False), range(640))

    def losses(loader):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        out = []
        for x, y in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    slow = losses(DataLoader(part, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)))
    fast = losses(TensorLoader.from_dataset(part, batch_size=32, shuffle=True,
                                            generator=torch.Generator().manual_seed(0)))
    assert len(fast) == 20 and slow == fast


def test_as_tensors_rejects_transforms_and_other_datasets():
    with pytest.raises(ValueError, match="transform"):
        as_tensors(MNIST(train=False, transform=lambda x: x, download=False))
    with pytest.raises(TypeError, match="MNIST dataset or a Subset"):
        as_tensors(list(range(3)))


# ----------------------------------------------------------------------------- fallback


def test_fallback_is_stratified_deterministic_and_announced(tmp_path, offline, capsys):
    splits = load_mnist(tmp_path)
    printed = capsys.readouterr().out
    assert splits.fallback and "not available" in printed and "test split" in printed
    train_idx, test_idx = splits.train.indices, splits.test.indices
    assert not set(train_idx) & set(test_idx) and len(train_idx) + len(test_idx) == 10000
    labels = splits.train.dataset.targets
    train_counts = torch.bincount(labels[train_idx], minlength=10)
    test_counts = torch.bincount(labels[test_idx], minlength=10)
    for digit, total in enumerate(TEST_COUNTS):
        assert abs(train_counts[digit].item() - 0.8 * total) <= 0.5
        assert train_counts[digit] + test_counts[digit] == total
    again = load_mnist(tmp_path, verbose=False)
    assert again.train.indices == train_idx and again.test.indices == test_idx
    assert torch.rand(1).item() != torch.rand(1).item()  # (the RNG still works)


def test_stratified_split_leaves_the_global_rng_alone():
    labels = torch.arange(100) % 10
    torch.manual_seed(0)
    a, b = stratified_split(labels), torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(b, torch.rand(1))
    assert torch.equal(torch.sort(torch.cat(a)).values, torch.arange(100))
    assert torch.bincount(labels[a[0]]).tolist() == [8] * 10


def test_with_the_training_split_on_disk_there_is_no_fallback(tiny_root, offline, capsys):
    root, _, _ = tiny_root
    splits = load_mnist(root)
    assert not splits.fallback and len(splits.train) == 50 and len(splits.test) == 10000
    assert "NOTE" not in capsys.readouterr().out


def test_offline_variable_prevents_any_download(tmp_path, offline, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("no download may be attempted offline")

    monkeypatch.setattr(mnist, "download_file", forbidden)
    assert load_mnist(tmp_path, verbose=False).fallback


# ----------------------------------------------------------------------------- downloads


def test_download_from_the_first_mirror_that_works(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_split(mirror, "train", np.zeros((2, 28, 28)), np.array([1, 2]))
    files = {kind: (mirror / "MNIST" / "raw" / FILES[("train", kind)][0]) for kind in ("images", "labels")}
    registry = dict(FILES)
    for kind, path in files.items():
        registry[("train", kind)] = (path.name, hashlib.md5(path.read_bytes()).hexdigest())
    monkeypatch.setattr(mnist, "FILES", registry)
    dead = (tmp_path / "dead").as_uri() + "/"
    root = tmp_path / "root"
    download_split(root, "train", mirrors=[dead, (mirror / "MNIST" / "raw").as_uri() + "/"])
    for path in files.values():
        assert (root / "MNIST" / "raw" / path.name).read_bytes() == path.read_bytes()
    assert load_split(root, download=False)[1].tolist() == [1, 2]


def test_a_failed_or_corrupt_download_leaves_nothing_and_says_what_to_do(tmp_path, capsys, monkeypatch):
    mirror = tmp_path / "mirror"
    write_split(mirror, "train", np.zeros((2, 28, 28)), np.array([1, 2]))  # right names, wrong md5s
    root = tmp_path / "root"
    with pytest.raises(DataFileError, match=r"from any mirror(.|\n)*md5 .*discarded(.|\n)*by hand"):
        download_split(root, "train", mirrors=[(tmp_path / "nowhere").as_uri() + "/",
                                               (mirror / "MNIST" / "raw").as_uri() + "/"])
    assert not [p for p in root.rglob("*") if p.is_file()], "nothing may be left behind"
    # load_mnist with downloads allowed but failing falls back, and says so
    monkeypatch.setattr(mnist, "MIRRORS", [(tmp_path / "nowhere").as_uri() + "/"])
    splits = load_mnist(tmp_path / "root2", download=True)
    assert splits.fallback and "could not download" in splits.reason
    assert "not available" in capsys.readouterr().out


# ----------------------------------------------------------------------------- digit grid


def test_show_digits_draws_labels_and_marks_wrong_predictions():
    images = torch.zeros(10, 1, 28, 28)
    images[4, 0, 5, 7] = 1.0
    labels = torch.arange(10)
    predictions = labels.clone()
    predictions[3] = 5
    fig, ax = show_digits(images, labels, predictions, ncols=4)
    titles = [t.get_text() for t in ax.texts]
    assert titles[:3] == ["0", "1", "2"] and titles[3] == "3, predicted 5" and len(titles) == 10
    assert ax.texts[3].get_color() == "red" and ax.texts[0].get_color() == "black"
    canvas = ax.images[0].get_array()
    assert canvas.shape[1] == 4 * 32 and canvas.shape[0] == 3 * 40, "3 rows of 4 digits with room for titles"
    assert canvas.sum() == 1.0, "the one lit pixel of digit 4 is drawn once"
    top, left = np.argwhere(np.asarray(canvas) == 1.0)[0]
    assert (top - 5) % 40 == 12 and (left - 7) % 32 == 2 and (left - 7) // 32 == 0 and (top - 5) // 40 == 1
    plt.close(fig)
    fig, ax = show_digits(np.zeros((3, 784)), labels=[1, 2, 3])
    assert [t.get_text() for t in ax.texts] == ["1", "2", "3"]
    plt.close(fig)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        show_digits(np.zeros((3, 784)), labels=[1, 2])
