"""One MNIST training epoch: the fast tensor path against the per-sample Dataset + DataLoader.

Both paths train the same model from the same seed on the same shuffled order (one
seeded generator each); the script asserts that their per-step losses are bitwise
identical, then reports the epoch ratio slow/fast for the sheet's MLP
([784, 32, 32, 32, 10]) and a small conv net. Rounds interleave the two paths so that
load on a shared machine hits both alike; the ratio is the median over rounds.

  slow  DataLoader(MNIST dataset, batch_size, shuffle, generator), each batch moved to the device
  fast  utils.mnist.TensorLoader: the split as one tensor on the device, batches by indexing

    python benchmarks/bench_mnist.py [--rounds 3] [--batch-size 32] [--threads 1] [--device cpu]

Data: the official test split shipped in utils/mnist_data (10,000 digits), so it runs offline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from utils import get_device  # noqa: E402
from utils.mnist import MNIST, TensorLoader  # noqa: E402


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))


def conv() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def epoch(make_model, loader, device) -> tuple[float, list[float]]:
    torch.manual_seed(0)
    model = make_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)  # a no-op on the fast path
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    losses = [float(v) for v in torch.stack(losses).cpu()]  # one sync, after the clock
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default=None, help="default: utils.get_device()")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else get_device()
    data = MNIST(train=False, download=False)
    print(f"device {device}, {torch.get_num_threads()} thread(s), {len(data)} digits, batch {args.batch_size}, "
          f"{args.rounds} rounds")

    def slow_loader():
        return DataLoader(data, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))

    def fast_loader():
        # Building it (normalising the split, copying it to the device) is part of its cost.
        return TensorLoader.from_dataset(data, device, batch_size=args.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))

    def timed_fast(make_model):
        start = time.perf_counter()
        loader = fast_loader()
        setup = time.perf_counter() - start
        seconds, losses = epoch(make_model, loader, device)
        return setup + seconds, losses

    models = {"sheet MLP 784-32-32-32-10": mlp, "conv net 8-16 channels": conv}
    times = {name: {"slow": [], "fast": []} for name in models}
    for round_ in range(args.rounds):
        for name, make_model in models.items():
            slow_s, slow_losses = epoch(make_model, slow_loader(), device)
            fast_s, fast_losses = timed_fast(make_model)
            if slow_losses != fast_losses:
                raise SystemExit(f"{name}: the two paths gave different losses; they must be bitwise identical")
            times[name]["slow"].append(slow_s)
            times[name]["fast"].append(fast_s)
            print(f"round {round_ + 1} {name}: slow {slow_s:.2f} s, fast {fast_s:.2f} s, "
                  f"{len(fast_losses)} steps, losses bitwise identical")
    print()
    print("| model | slow / fast (median of rounds) | ratios per round |")
    print("| --- | ---: | --- |")
    for name, t in times.items():
        ratios = [s / f for s, f in zip(t["slow"], t["fast"])]
        print(f"| {name} | {statistics.median(ratios):.2f} | {', '.join(f'{r:.2f}' for r in ratios)} |")


if __name__ == "__main__":
    main()
