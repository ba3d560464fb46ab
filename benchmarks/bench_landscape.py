"""How fast plot_loss.get_loss_grid is, against the plain per-point loop, as ratios measured in one run.

For three models of the landscape assignment (OneFCNet = Flatten + Linear(784, 10), the MLP
[784, 32, 32, 32, 10] and the GarmentClassifier CNN) on seeded synthetic MNIST-shaped digits
(each class a smooth random template plus noise, as uint8 images), each model briefly trained so the
grid sits near a minimum, a 20x20 grid of two filter-normalised random directions over [-1, 1]²:

  a          the per-point loop: write theta + alpha*d1 + beta*d2 into the model, one pass through
             a Dataset (per-sample ToTensor + Normalize, as torchvision does) and a DataLoader
             of batch 64.
  auto       get_loss_grid as the notebooks call it (it picks its strategy itself): the whole grid
  loop       get_loss_grid(strategy="loop"): per point, pre-normalised tensor, slices of 256
  vmap20     get_loss_grid(strategy="vmap", points_per_pass=20)
  first1 / first20   get_loss_grid(strategy="first_layer", points_per_pass=1 / 20)
  wide20     convert_net.convert_net: 20 copies in one wide network, sample slices of 256

Every point costs the same in (a) and in the alternatives, so to keep the run short they compute
only the first ``--rows`` rows of the grid and their times are scaled to the whole grid (a fixed
set-up cost, such as the first layer's three passes, is then counted several times: the
alternatives' ratios are, if anything, understated). ``auto`` computes the whole grid.

Every implementation runs once per round, rounds alternate the order, times are medians.
Exactness: the largest |difference| to (a) on the points (a) computed. Peak extra memory:
the rise of the process's peak resident memory during one call (VmHWM reset before it), measured
in a child process in which glibc returns freed memory to the system at once
(MALLOC_MMAP_THRESHOLD_; timing under that setting would charge page faults to every large
temporary), or torch's peak on a GPU.

    python benchmarks/bench_landscape.py [--rounds 3] [--threads 1] [--models onefc,mlp,garment]
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


MODELS = {
    "onefc": ("OneFCNet", lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10))),
    "mlp": ("MLP [784,32,32,32,10]", mlp),
    "garment": ("GarmentClassifier", garment_classifier),
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


def per_point_loop(net, loader, loss_fn, d1, d2, points):
    """(a): for each point, write the perturbed weights into a copy of the model, one full pass."""
    model = copy.deepcopy(net).eval()
    device = next(model.parameters()).device
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = []
    with torch.no_grad():
        for a, b in points:
            for n, p in model.named_parameters():
                p.copy_(base[n] + a * d1[n] + b * d2[n])
            total, count = 0.0, 0
            for x, y in loader:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=20)
    ap.add_argument("--samples", type=int, default=3200)
    ap.add_argument("--rows", type=int, default=2, help="rows of the grid that (a) and the alternatives compute")
    ap.add_argument("--models", default="onefc,mlp,garment")
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)  # the child that measures memory
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = get_device()
    if not args.memory_of:
        print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
              f"load {os.getloadavg()[0]:.1f}, {args.resolution}x{args.resolution} grid, {args.samples} samples, "
              f"(a) and the alternatives on {args.rows} rows, scaled; {args.rounds} rounds")
    images, labels = synthetic_digits(args.samples)
    dataset = DigitDataset(images, labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64)
    X = ((images.float() / 255 - MEAN) / STD).unsqueeze(1)
    loss_fn = nn.CrossEntropyLoss()
    xs = torch.linspace(-1, 1, args.resolution, dtype=torch.float64)
    n_points = args.resolution ** 2
    ys_part = xs[: args.rows]
    points_a = [(float(a), float(b)) for b in ys_part for a in xs]
    if not args.memory_of:
        print("| model | implementation | median s (whole grid) | speed-up vs a | max abs diff vs a | peak extra MiB |")
        print("| --- | --- | ---: | ---: | ---: | ---: |", flush=True)

    for key in [args.memory_of] if args.memory_of else args.models.split(","):
        title, make = MODELS[key]
        torch.manual_seed(0)
        net = make().to(device)
        train_briefly(net, X, labels, device)
        g = torch.Generator().manual_seed(1)
        d1 = plot_loss.get_random_direction(net, generator=g)
        d2 = plot_loss.get_random_direction(net, generator=g)
        grid_args = (net, (X, labels), loss_fn, (d1, d2), args.resolution, 1.0)
        part_args = (net, (X, labels), loss_fn, (d1, d2), (args.resolution, args.rows),
                     (1.0, (-1.0, float(ys_part[-1]))))
        impls = {
            "a": lambda: per_point_loop(net, loader, loss_fn, d1, d2, points_a),
            "auto": lambda: plot_loss.get_loss_grid(*grid_args, show_progress=False),
            "loop": lambda: plot_loss.get_loss_grid(*part_args, strategy="loop", show_progress=False),
            "vmap20": lambda: plot_loss.get_loss_grid(*part_args, strategy="vmap", points_per_pass=20,
                                                      show_progress=False),
            "wide20": lambda: wide_grid(net, X.to(device), labels.to(device), loss_fn, d1, d2, xs, ys_part),
        }
        if key != "garment" or device.type != "cpu":
            impls["first1"] = lambda: plot_loss.get_loss_grid(*part_args, strategy="first_layer",
                                                              points_per_pass=1, show_progress=False)
            impls["first20"] = lambda: plot_loss.get_loss_grid(*part_args, strategy="first_layer",
                                                               points_per_pass=20, show_progress=False)
        if args.memory_of:
            memory = {}
            for k in impls:
                before = reset_peak()
                impls[k]()
                memory[k] = peak_extra(before)
            print(json.dumps(memory))
            return
        times = {k: [] for k in impls}
        results = {}
        for r in range(args.rounds):
            order = list(impls) if r % 2 == 0 else list(reversed(impls))
            for k in order:
                start = time.perf_counter()
                results[k] = impls[k]()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[k].append(time.perf_counter() - start)
        memory = measure_memory(key)
        ref = results["a"]
        scale = n_points / len(points_a)
        a_full = statistics.median(times["a"]) * scale
        strategy = results["auto"].strategy
        for k in impls:
            t = statistics.median(times[k]) * (1 if k == "auto" else scale)
            z = results[k].z if hasattr(results[k], "z") else results[k]
            diff = float((z.reshape(-1)[: len(points_a)].double() - ref).abs().max())
            label = f"**auto ({strategy})**" if k == "auto" else k
            print(f"| {title} | {label} | {t:.2f} | {a_full / t:.1f} | {diff:.1e} | {memory.get(k, float('nan')):.0f} |",
                  flush=True)
    print(f"loss over the grid's first rows: {float(ref.min()):.3f} .. {float(ref.max()):.3f} (last model); "
          f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
