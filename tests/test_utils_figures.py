"""Figure checks find the expected data however it was drawn, and only then."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils.figures import check_curve, check_point, drawn_xy, legend_labels, main_axes, shows_curve, shows_point

PATH = np.array([[-1.5, 2.0], [-1.0, 1.0], [0.5, 0.3], [1.0, 1.0]])


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.mark.parametrize("draw", [
    lambda ax: ax.plot(PATH[:, 0], PATH[:, 1], label="p"),
    lambda ax: ax.scatter(PATH[:, 0], PATH[:, 1]),
    lambda ax: (ax.axhline(0.0), ax.plot([0, 1], [5, 5]), ax.plot(*PATH.T, "o-")),  # reference lines first
    lambda ax: ax.plot(*PATH.T, linestyle="none", marker="x"),
], ids=["plot", "scatter", "after-reference-lines", "markers-only"])
def test_a_path_is_found_however_it_was_drawn(ax, draw):
    draw(ax)
    check_curve(ax, PATH, "the path")
    check_point(ax, (1.0, 1.0), "the minimum")


def test_a_wrong_or_partial_path_is_not_found(ax):
    ax.plot(*PATH[:-1].T)
    ax.plot(*(PATH + 0.1).T)
    assert not shows_curve(ax, PATH)
    with pytest.raises(AssertionError, match="the figure does not show the path. Plot all of it"):
        check_curve(ax, PATH, "the path", hint="Plot all of it.")
    with pytest.raises(AssertionError, match="does not mark the minimum"):
        check_point(ax, (1.0, 1.0), "the minimum")


def test_one_dimensional_curves_match_y_values_at_any_x(ax):
    losses = [3.0, 2.0, 1.5]
    ax.plot([10, 20, 30], losses)
    assert shows_curve(ax, losses) and not shows_curve(ax, [3.0, 2.0, 1.0])


def test_points_in_collections_bars_and_line_collections(ax):
    ax.scatter([0.2, 0.4], [1.0, 2.0])
    ax.bar([0, 1, 2], [0.9, 0.8, 0.95])
    ax.hlines(0.5, 0, 2)
    assert shows_point(ax, (0.4, 2.0)) and shows_point(ax, (1.0, 0.8))
    assert shows_curve(ax, [0.9, 0.8, 0.95])  # bar heights in order
    assert any(xy.shape == (2, 2) and np.allclose(xy, [[0, 0.5], [2, 0.5]]) for xy in drawn_xy(ax))
    assert not shows_point(ax, (0.4, 2.1))


def test_main_axes_skip_colour_bars_and_legend_labels(ax):
    image = ax.imshow(np.eye(3))
    ax.figure.colorbar(image, ax=ax)
    assert main_axes(ax.figure) == [ax]
    assert legend_labels(ax) == []
    ax.plot([1, 2], label="a")
    ax.legend()
    assert legend_labels(ax) == ["a"]


def test_points_that_are_not_finite_are_not_required(ax):
    diverged = np.array([[0.0, 0.0], [1.0, 2.0], [np.nan, np.nan], [np.inf, 1.0]])
    ax.plot(*diverged.T)
    assert shows_curve(ax, diverged) and shows_curve(ax, [0.0, 2.0, np.nan])
    assert not shows_curve(ax, np.array([[0.0, 0.0], [1.0, 2.5], [np.nan, np.nan]]))
