"""How fast plot_loss.get_loss_grid is, against plain per-point loops, as ratios measured in one run.

Models: the landscape assignment's OneFCNet (Flatten + Linear(784, 10)), MLP [784, 32, 32, 32, 10]
and GarmentClassifier CNN, and three shapes the course's own tests do not have: an MLP
[784, 32, 32, 10] with a hand-written ``forward``; a small CNN with a hand-written ``forward``
(padding, BatchNorm, functional max-pooling, a Linear without bias); a residual CNN (a strided
stem, a conv-BN-ReLU-conv-BN block plus the skip, global average pooling). Data: seeded synthetic
MNIST-shaped digits (each class a smooth random template plus noise, as uint8 images); each model
briefly trained so the grid sits near a minimum; two filter-normalised random directions over
[-1, 1]^2, a 20x20 grid (8x8 for the two hand-written CNNs, as slow as the GarmentClassifier per
point):

  a          the per-point loop of a notebook: write theta + alpha*d1 + beta*d2 into the model,
             one pass through a Dataset (per-sample ToTensor + Normalize, as torchvision does)
             and a DataLoader of batch 64.
  plain      the plain per-point loop over in-memory tensors: the same, over the pre-normalised
             tensor in batches of 256 (the fastest of 64, 256 and all at once for the CNNs, and
             within a few percent of the best for the MLPs).
  auto       get_loss_grid as the notebooks call it (it times the strategies that apply on a
             slice and keeps the fastest): the whole grid, set-up and trial included.
  loop / vmap / first_layer   get_loss_grid with that strategy forced (automatic sizes)
  wide20     convert_net.convert_net: 20 copies in one wide network, sample slices of 256
             (nn.Sequential models only)

Every point costs the same in (a), plain and the forced strategies, so to keep the run short they
compute only the first ``--rows`` rows of the grid and their times are scaled to the whole grid
(a fixed set-up cost is then counted several times: the forced strategies' ratios are, if
anything, understated). ``auto`` computes the whole grid, so its ratios include its set-up and
its trial.

Every implementation runs once per round, rounds alternate the order, times are medians.
Exactness: the largest |difference| to (a) on the points (a) computed, relative where the loss
is above 1 (float32 rounding: the losses at a CNN's grid corners reach 60, where 1e-6 absolute
is below float32's resolution; a trained OneFCNet's go down to 1e-6). Peak extra memory:
the rise of the process's peak resident memory during one call (VmHWM reset before it), measured
in a child process in which glibc returns freed memory to the system at once
(MALLOC_MMAP_THRESHOLD_; timing under that setting would charge page faults to every large
temporary), or torch's peak on a GPU.

    python benchmarks/bench_landscape.py [--rounds 3] [--threads 1] [--models onefc,mlp,...] [--no-memory]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import convert_net  # noqa: E402
import plot_loss  # noqa: E402
from utils import get_device  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def garment_classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def mlp(sizes=(784, 32, 32, 32, 10)) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


class HandWrittenMLP(nn.Module):
    """[784, 32, 32, 10] as a student writes it, with its own forward."""

    def __init__(self):
        super().__init__()
        self.hidden1, self.hidden2, self.out = nn.Linear(784, 32), nn.Linear(32, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = x.view(len(x), 784)
        return self.out(torch.relu(self.hidden2(torch.relu(self.hidden1(x)))))


class HandWrittenCNN(nn.Module):
    """Two padded 3x3 convolutions with BatchNorm and functional 2x2 max-pooling, a Linear without
    bias: about 88k multiply-adds per digit, under the threshold at which the rule of thumb the
    grid used before (batch grid points below 100k) chose vmap, which was 4x slower here."""

    def __init__(self):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.norm2 = nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.classify = nn.Linear(8 * 7 * 7, 10, bias=False)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.norm1(self.conv1(x))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.norm2(self.conv2(x))), 2)
        return self.classify(torch.flatten(x, 1))


class ResidualCNN(nn.Module):
    """A strided stem, one residual block (conv-BN-ReLU-conv-BN plus the skip), global average pooling."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        h = self.stem(x)
        return self.head(torch.relu(h + self.block(h)).mean((2, 3)))


MODELS = {  # key: (title, model, grid resolution)
    "onefc": ("OneFCNet", lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 20),
    "mlp": ("MLP [784,32,32,32,10]", mlp, 20),
    "garment": ("GarmentClassifier", garment_classifier, 20),
    "handmlp": ("MLP [784,32,32,10], own forward", HandWrittenMLP, 20),
    "handcnn": ("CNN, own forward, BatchNorm", HandWrittenCNN, 8),
    "residual": ("Residual CNN", ResidualCNN, 8),
}


def synthetic_digits(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (n, 28, 28) and labels: a smooth random template per class plus noise."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.randn(10, 1, 28, 28, generator=g)
    templates = nn.functional.avg_pool2d(templates, 5, stride=1, padding=2)[:, 0]
    templates = (templates - templates.min()) / (templates.max() - templates.min())
    labels = torch.randint(0, 10, (n,), generator=g)
    images = templates[labels] * 200 + 40 * torch.randn(n, 28, 28, generator=g)
    return images.clamp(0, 255).to(torch.uint8), labels


class DigitDataset(torch.utils.data.Dataset):
    """Per-sample conversion as torchvision's ToTensor + Normalize do it."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float().div(255).unsqueeze(0)
        return (x - MEAN) / STD, self.labels[i]


def train_briefly(net, X, Y, device, epochs=2):
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(X[idx].to(device)), Y[idx].to(device)).backward()
            opt.step()
    net.zero_grad(set_to_none=True)


def per_point_loop(net, batches, loss_fn, d1, d2, points):
    """(a) and plain: for each point, write the perturbed weights into a copy of the model, one
    full pass over ``batches`` (a DataLoader, or a list of in-memory (x, y) pairs)."""
    model = copy.deepcopy(net).eval()
    device = next(model.parameters()).device
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = []
    with torch.no_grad():
        for a, b in points:
            for n, p in model.named_parameters():
                p.copy_(base[n] + a * d1[n] + b * d2[n])
            total, count = 0.0, 0
            for x, y in batches:
                x, y = x.to(device), y.to(device)
                total += float(loss_fn(model(x), y)) * len(y)
                count += len(y)
            out.append(total / count)
    return torch.tensor(out, dtype=torch.float64)


def wide_grid(net, X, Y, loss_fn, d1, d2, xs, ys, copies=20, slice_size=256):
    """convert_net's wide network: ``copies`` grid points per forward pass."""
    points = [(float(a), float(b)) for b in ys for a in xs]
    totals = torch.zeros(len(points), dtype=torch.float64)
    net = net.eval()
    with torch.no_grad():
        for start in range(0, len(points), copies):
            coefs = torch.tensor(points[start:start + copies])
            wide = convert_net.convert_net(net, [d1, d2], coefs).to(X.device).eval()
            for i in range(0, len(X), slice_size):
                out = wide(X[i:i + slice_size])                     # (B, G, 10)
                y = Y[i:i + slice_size]
                for g in range(out.shape[1]):
                    totals[start + g] += float(loss_fn(out[:, g], y)) * len(y)
    return (totals / len(X)).reshape(len(ys), len(xs))


def reset_peak() -> int:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _vm("VmHWM")
    except OSError:
        return -1


def _vm(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return -1


def peak_extra(before: int) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    if before < 0:
        return float("nan")
    return (_vm("VmHWM") - before) / 2**20


def measure_memory(key: str) -> dict[str, float]:
    """Peak extra memory of each implementation, from a child process (see the docstring)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    argv = [a for a in sys.argv[1:]]
    if "--models" in argv:
        i = argv.index("--models")
        del argv[i:i + 2]
    proc = subprocess.run([sys.executable, __file__, *argv, "--memory-of", key], env=env,
                          capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"memory of {key} not measured: {proc.stderr[-500:]}", file=sys.stderr)
        return {}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resolution", type=int, help="points per axis for every model (default: the model's)")
    ap.add_argument("--samples", type=int, default=3200)
    ap.add_argument("--rows", type=int, default=2,
                    help="rows of the grid that (a), plain and the forced strategies compute")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory column (halves the run)")
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)  # the child that measures memory
    return ap.parse_args()


def implementations(key, net, data, args) -> tuple[dict, int, int]:
    """{name: callable}, the grid's points and the points (a) computes, for one trained model."""
    X, labels, loader = data
    resolution = args.resolution or MODELS[key][2]
    rows = min(args.rows, resolution)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    d1 = plot_loss.get_random_direction(net, generator=g)
    d2 = plot_loss.get_random_direction(net, generator=g)
    xs = torch.linspace(-1, 1, resolution, dtype=torch.float64)
    points = [(float(a), float(b)) for b in xs[:rows] for a in xs]
    device = next(net.parameters()).device
    tensors = [(X[i:i + 256].to(device), labels[i:i + 256].to(device)) for i in range(0, len(X), 256)]
    whole = (net, (X, labels), loss_fn, (d1, d2), resolution, 1.0)
    part = (net, (X, labels), loss_fn, (d1, d2), (resolution, rows), (1.0, (-1.0, float(xs[rows - 1]))))
    impls = {
        "a": lambda: per_point_loop(net, loader, loss_fn, d1, d2, points),
        "plain": lambda: per_point_loop(net, tensors, loss_fn, d1, d2, points),
        "auto": lambda: plot_loss.get_loss_grid(*whole, show_progress=False),
    }
    for strategy in ("loop", "vmap", "first_layer"):
        impls[strategy] = lambda s=strategy: plot_loss.get_loss_grid(*part, strategy=s, show_progress=False)
    if isinstance(net, nn.Sequential):
        impls["wide20"] = lambda: wide_grid(net, X.to(device), labels.to(device), loss_fn, d1, d2, xs, xs[:rows])
    try:
        plot_loss.get_loss_grid(*part, strategy="first_layer", show_progress=False)
    except ValueError:  # a model the first-layer shortcut does not apply to
        del impls["first_layer"]
    return impls, resolution ** 2, len(points)


def time_rounds(impls: dict, rounds: int, device: torch.device) -> tuple[dict, dict]:
    """Every implementation once per round, the order reversed every other round."""
    times, results = {k: [] for k in impls}, {}
    for r in range(rounds):
        for k in list(impls) if r % 2 == 0 else list(reversed(impls)):
            start = time.perf_counter()
            results[k] = impls[k]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[k].append(time.perf_counter() - start)
    return times, results


def report(title: str, times: dict, results: dict, memory: dict, n_points: int, n_part: int) -> None:
    """One table row per implementation: whole-grid seconds, ratios to (a) and plain, exactness."""
    ref = results["a"]
    scale = n_points / n_part
    full = {k: statistics.median(v) * (1 if k == "auto" else scale) for k, v in times.items()}
    for k, t in full.items():
        z = results[k].z if hasattr(results[k], "z") else results[k]
        diff = float(((z.reshape(-1)[:n_part].double() - ref) / ref.abs().clamp_min(1)).abs().max())
        label = f"**auto ({results['auto'].strategy})**" if k == "auto" else k
        print(f"| {title} | {label} | {t:.2f} | {full['a'] / t:.1f} | {full['plain'] / t:.2f} | {diff:.1e} "
              f"| {memory.get(k, float('nan')):.0f} |", flush=True)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = get_device()
    if not args.memory_of:
        print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
              f"load {os.getloadavg()[0]:.1f}, {args.samples} samples, (a), plain and the forced strategies "
              f"on {args.rows} rows, scaled; {args.rounds} rounds")
        print("| model | implementation | median s (whole grid) | speed-up vs a | speed-up vs plain "
              "| max diff vs a | peak extra MiB |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    images, labels = synthetic_digits(args.samples)
    loader = torch.utils.data.DataLoader(DigitDataset(images, labels), batch_size=64)
    X = ((images.float() / 255 - MEAN) / STD).unsqueeze(1)
    for key in [args.memory_of] if args.memory_of else args.models.split(","):
        title, make, _ = MODELS[key]
        torch.manual_seed(0)
        net = make().to(device)
        train_briefly(net, X, labels, device)
        impls, n_points, n_part = implementations(key, net.eval(), (X, labels, loader), args)
        if args.memory_of:
            memory = {}
            for k in impls:
                before = reset_peak()
                impls[k]()
                memory[k] = peak_extra(before)
            print(json.dumps(memory))
            return
        times, results = time_rounds(impls, args.rounds, device)
        memory = {} if args.no_memory else measure_memory(key)
        report(f"{title} ({MODELS[key][2]}x{MODELS[key][2]})" if not args.resolution else title,
               times, results, memory, n_points, n_part)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
