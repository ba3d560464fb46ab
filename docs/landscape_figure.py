"""Draws docs/landscape.png, the README's picture of the landscape assignment.

Two runs of the notebook (source/landscape/landscape.ipynb), each in the plane of its own
path, on the first 3,200 training digits: full-batch gradient descent on OneFCNet (25
steps, lr 0.5), whose loss is convex, and SGD with momentum on the GarmentClassifier (5
epochs of 50 mini-batches, lr 0.02, momentum 0.9, the plane from every 5th state), whose
loss is not: a bowl beside a plateau that falls away into a bent valley. The grids are finer
than the notebook's (41 x 41 and 31 x 31; the CNN's on the notebook's 640 digits). Drawn
with matplotlib: plotly's static export needs kaleido 1.x and a Chrome browser, which the
course does not install. Run from the repository root (about a minute on one CPU thread):

    .venv/bin/python docs/landscape_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from plot_loss import get_loss_grid, get_state_directions  # noqa: E402
from utils import seed_everything  # noqa: E402
from utils.mnist import TensorLoader, as_tensors, load_mnist  # noqa: E402

OUT = Path(__file__).resolve().parent / "landscape.png"


class GarmentClassifier(nn.Module):
    """The notebook's CNN (LeNet-style)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.pool, self.conv2 = nn.Conv2d(1, 6, 5), nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 4 * 4, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x))).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _train(model, optimizer, loader, n_epochs):
    states = [{k: v.detach().clone() for k, v in model.state_dict().items()}]
    for _ in range(n_epochs):
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return states


def _panel(ax, fig, model, states, data, resolution, title, label):
    pca = get_state_directions(states, n_states=None)
    grid = get_loss_grid(model, data, nn.CrossEntropyLoss(), pca, resolution, pca.grid_range(), show_progress=False)
    filled = ax.contourf(grid.x, grid.y, grid.z, levels=30, cmap="viridis")
    ax.contour(grid.x, grid.y, grid.z, levels=15, colors="white", linewidths=0.4, alpha=0.6)
    fig.colorbar(filled, ax=ax, label="training loss (cross-entropy)")
    path = pca.coordinates.numpy()
    ax.plot(path[:, 0], path[:, 1], "-o", color="white", markersize=2, linewidth=1, label=label)
    ax.plot(*path[0], "o", color="orange", markeredgecolor="black", markersize=10, label="start")
    ax.plot(*path[-1], "*", color="red", markeredgecolor="black", markersize=14, label="end")
    ax.set_xlabel(f"PC1 ({100 * pca.explained_variance[0]:.1f}% of the path's variance)")
    ax.set_ylabel(f"PC2 ({100 * pca.explained_variance[1]:.1f}%)")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small")


def main() -> None:
    torch.set_num_threads(1)
    images, labels = as_tensors(load_mnist().train)
    x, y = (images[:3200] - 0.1307) / 0.3081, labels[:3200]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))

    seed_everything()
    linear = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    states = _train(linear, torch.optim.SGD(linear.parameters(), lr=0.5), [(x, y)], 25)  # the notebook's GD
    _panel(left, fig, linear, states, (x, y), 41, "OneFCNet (convex): gradient descent, full batch",
           "25 steps")

    seed_everything()
    cnn = GarmentClassifier()
    loader = TensorLoader(x, y, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    states = _train(cnn, torch.optim.SGD(cnn.parameters(), lr=0.02, momentum=0.9), loader, 5)  # the notebook's SGDwM
    _panel(right, fig, cnn, states[::-5][::-1], (x[:640], y[:640]), 31,
           "GarmentClassifier (a CNN): SGD with momentum", "250 steps (every 5th)")

    fig.suptitle("MNIST: the loss in the plane of each training path")
    fig.tight_layout()
    fig.savefig(OUT, dpi=100)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
