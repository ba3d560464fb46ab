"""Loss landscapes: directions from a training trajectory, the loss on a 2-D grid, plotly figures.

The picture (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"): pick two
directions d1, d2 in parameter space and draw the loss at ``theta + alpha*d1 + beta*d2`` over a
grid of (alpha, beta) around the trained parameters theta. The notebooks import it through
the top-level ``plot_loss.py``; its modules, one concern each:

* ``directions``: ``get_state_directions`` (the plane of a trajectory, a PCA) and
  ``get_random_direction`` (filter-normalised, random);
* ``grid``: ``get_loss_grid``, the loss over the grid, averaged per sample, the model left as
  it was;
* ``strategies``: the ways to evaluate grid points (a per-point loop, several points per pass
  with ``torch.func.vmap``, the first layer's linearity);
* ``choice``: which strategy a grid uses: each candidate timed on a slice, the fastest kept;
* ``tracing``: the ``torch.fx`` rewrites the strategies use (the first-layer cut, fast pooling,
  BatchNorm folded into convolutions);
* ``figures``: ``plot_losses``, ``plot_contour``, ``plot_surface``.

Example: the GarmentClassifier of the notebooks (LeNet-style, for 28x28 images)::

    pca = get_state_directions(states)                         # states: list of state_dicts
    grid = get_loss_grid(net, loader, nn.CrossEntropyLoss(), pca, 21, pca.grid_range())
    plot_contour(grid, pca).show()

Both results also unpack, for code written against the tuple form::

    directions, state_ids, coordinates = get_state_directions(states, n_states=10)   # coordinates 2 x N
    x, y, Z, _ = get_loss_grid(net, loader, loss_fn, directions=directions, resolution=(20, 20), scale=1)
    plot_contour(x, y, Z)
"""

from .directions import Direction, TrajectoryPCA, get_random_direction, get_state_directions
from .figures import PORTABLE_RENDERER, plot_contour, plot_losses, plot_surface
from .grid import LossGrid, get_loss_grid

__all__ = [
    "Direction", "LossGrid", "PORTABLE_RENDERER", "TrajectoryPCA", "get_loss_grid", "get_random_direction",
    "get_state_directions", "plot_contour", "plot_losses", "plot_surface",
]
