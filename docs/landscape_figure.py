"""Draws docs/landscape.png, the README's picture of the landscape assignment.

The same run and grid as the notebook's first landscape (source/landscape/landscape.ipynb:
full-batch gradient descent on OneFCNet, 25 steps, lr 0.5, the first 3,200 training digits,
a 15 x 15 grid over the path), drawn with matplotlib: plotly's static export needs kaleido
1.x and a Chrome browser, which the course does not install. Run from the repository root:

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
from utils.mnist import as_tensors, load_mnist  # noqa: E402

OUT = Path(__file__).resolve().parent / "landscape.png"


def main() -> None:
    torch.set_num_threads(1)
    images, labels = as_tensors(load_mnist().train)
    x, y = (images[:3200] - 0.1307) / 0.3081, labels[:3200]
    seed_everything()
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)  # the notebook's GD, full batch
    states = [{k: v.clone() for k, v in model.state_dict().items()}]
    for _ in range(25):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    pca = get_state_directions(states, n_states=None)
    grid = get_loss_grid(model, (x, y), nn.CrossEntropyLoss(), pca, 41, pca.grid_range(), show_progress=False)

    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    filled = ax.contourf(grid.x, grid.y, grid.z, levels=30, cmap="viridis")
    ax.contour(grid.x, grid.y, grid.z, levels=15, colors="white", linewidths=0.4, alpha=0.6)
    fig.colorbar(filled, ax=ax, label="training loss (cross-entropy)")
    path = pca.coordinates.numpy()
    ax.plot(path[:, 0], path[:, 1], "-o", color="white", markersize=3, label="gradient descent, 25 steps")
    ax.plot(*path[0], "o", color="orange", markeredgecolor="black", markersize=10, label="start")
    ax.plot(*path[-1], "*", color="red", markeredgecolor="black", markersize=14, label="end")
    ax.set_xlabel(f"PC1 ({100 * pca.explained_variance[0]:.1f}% of the path's variance)")
    ax.set_ylabel(f"PC2 ({100 * pca.explained_variance[1]:.1f}%)")
    ax.set_title("OneFCNet on MNIST: the loss in the plane of its training path")
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
