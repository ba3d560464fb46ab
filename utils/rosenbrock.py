"""Rosenbrock's banana function and plots of optimisation paths over it.

    f(x, y) = (a - x)^2 + b (y - x^2)^2,    global minimum f(a, a^2) = 0.

The function values span many orders of magnitude, so contour plots use a
logarithmic colour scale; otherwise the curved valley, where the optimisers
spend their time, is a single flat colour.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import LogFormatterSciNotation, LogLocator

from .plotting import as_numpy


def rosenbrock(x, y, a: float = 1.0, b: float = 100.0):
    """f(x, y) for numbers, NumPy arrays or torch tensors alike (autograd works through it)."""
    return (a - x) ** 2 + b * (y - x**2) ** 2


def minimum(a: float = 1.0) -> tuple[float, float]:
    return (a, a * a)


def grid(xlim=(-4.0, 4.0), ylim=(-4.0, 4.0), n: int = 400, a: float = 1.0, b: float = 100.0):
    """(X, Y, Z) arrays of shape (n, n) for contour and surface plots."""
    X, Y = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))
    return X, Y, rosenbrock(X, Y, a, b)


def contour(ax=None, xlim=(-4.0, 4.0), ylim=(-4.0, 4.0), a: float = 1.0, b: float = 100.0, levels: int = 40):
    """Filled contour plot of f with a log colour scale and the minimum marked; returns (fig, ax)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 6))
    else:
        fig = ax.figure
    X, Y, Z = grid(xlim, ylim, a=a, b=b)
    Z = Z + 1e-3  # a log scale cannot show the exact zero at the minimum
    lev = np.logspace(np.log10(Z.min()), np.log10(Z.max()), levels)
    filled = ax.contourf(X, Y, Z, levels=lev, norm=LogNorm(), cmap="viridis")
    # Ticks at powers of ten (10^-3 ... 10^4), not at the contour levels.
    fig.colorbar(filled, ax=ax, label="f(x, y)  (log scale)", ticks=LogLocator(), format=LogFormatterSciNotation())
    ax.plot(*minimum(a), marker="*", color="red", markersize=16, linestyle="none",
            markeredgecolor="white", label=f"minimum {minimum(a)}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    return fig, ax


def to_path(points) -> np.ndarray:
    """A path as an (n, 2) array, from a list of points or tensors, or an (n, 2) tensor."""
    if isinstance(points, (list, tuple)):
        path = np.stack([as_numpy(p).reshape(-1) for p in points])
    else:
        path = as_numpy(points)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"a path needs shape (steps, 2), got {path.shape}")
    return path


def plot_paths(ax, paths: Mapping[str, object], markevery: int | None = None):
    """Draw each path (label -> points) with a dot at its start and a cross at its end."""
    for label, points in paths.items():
        path = to_path(points)
        (line,) = ax.plot(path[:, 0], path[:, 1], "-", linewidth=1.5, label=label,
                          marker="." if markevery else None, markevery=markevery)
        ax.plot(*path[0], "o", color=line.get_color(), markersize=6)
        ax.plot(*path[-1], "x", color=line.get_color(), markersize=9, markeredgewidth=2)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def paths_figure(paths: Mapping[str, object], title: str = "", markevery: int | None = None, **contour_kwargs):
    """Contour plot of f with the given paths on top; returns (fig, ax)."""
    fig, ax = contour(**contour_kwargs)
    plot_paths(ax, paths, markevery=markevery)
    if title:
        ax.set_title(title)
    return fig, ax


def surface_figure(paths: Mapping[str, object] | None = None, xlim=(-2.0, 2.0), ylim=(-1.0, 3.0),
                   a: float = 1.0, b: float = 100.0, n: int = 120):
    """Interactive 3-D surface of log10(1 + f) (plotly), with optional paths drawn on it."""
    import plotly.graph_objects as go

    X, Y, Z = grid(xlim, ylim, n=n, a=a, b=b)
    fig = go.Figure(go.Surface(x=X, y=Y, z=np.log10(1 + Z), colorscale="Viridis", opacity=0.85,
                               colorbar=dict(title="log10(1 + f)"), name="f"))
    for label, points in (paths or {}).items():
        path = to_path(points)
        z = np.log10(1 + rosenbrock(path[:, 0], path[:, 1], a, b))
        fig.add_trace(go.Scatter3d(x=path[:, 0], y=path[:, 1], z=z, mode="lines+markers",
                                   marker=dict(size=2), line=dict(width=4), name=label))
    mx, my = minimum(a)
    fig.add_trace(go.Scatter3d(x=[mx], y=[my], z=[0.0], mode="markers", name="minimum",
                               marker=dict(size=6, color="red", symbol="diamond")))
    fig.update_layout(scene=dict(xaxis_title="x", yaxis_title="y", zaxis_title="log10(1 + f)"),
                      height=600, margin=dict(l=0, r=0, t=30, b=0))
    return fig


def check_descent_step(cls, **hyper) -> None:
    """Visible check of an optimiser class with the interface ``cls(param, **hyper)``,
    ``step(grad)``, ``.param``: one step from (0.5, -1) with the gradient (2, -1) keeps the
    shape, leaves the caller's array alone (a copy is stored) and moves downhill."""
    start = np.array([0.5, -1.0])
    optim = cls(start, **hyper)
    optim.step(np.array([2.0, -1.0]))
    name = cls.__name__
    if np.shape(optim.param) != (2,):
        raise AssertionError(f"{name}.param should have shape (2,), not {np.shape(optim.param)}")
    if not np.all(np.isfinite(optim.param)):
        raise AssertionError(f"{name}.param contains NaN or inf after one step")
    if not np.array_equal(start, [0.5, -1.0]):
        raise AssertionError(f"{name} changed the array it was given: store a copy, np.array(param, dtype=float)")
    moved = np.asarray(optim.param, dtype=float) - start
    if not moved @ np.array([2.0, -1.0]) < 0:
        raise AssertionError(f"{name}.step moved uphill: a descent step goes against the gradient")
