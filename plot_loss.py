"""Loss landscapes for the notebooks: ``from plot_loss import get_state_directions, get_loss_grid, ...``.

The code lives in the package ``loss_landscape/`` beside this file, one module per concern
(directions, the grid and its strategies, figures; its docstring has the overview). This
module keeps the name the notebooks, Colab and the student repository import.
"""

from loss_landscape import (PORTABLE_RENDERER, Direction, LossGrid, TrajectoryPCA, get_loss_grid,
                            get_random_direction, get_state_directions, plot_contour, plot_losses,
                            plot_surface)

__all__ = [
    "Direction", "LossGrid", "PORTABLE_RENDERER", "TrajectoryPCA", "get_loss_grid", "get_random_direction",
    "get_state_directions", "plot_contour", "plot_losses", "plot_surface",
]
