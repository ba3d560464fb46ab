"""Plot helpers with the course's defaults: labelled axes, legends, log scales where they fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def as_numpy(values) -> np.ndarray:
    """Turn a list of floats or a (possibly grad-tracking, GPU) tensor into a NumPy array."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray([float(v) for v in values] if isinstance(values, (list, tuple)) else values, dtype=float)


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logy: bool = False,
    ax=None,
):
    """Draw one line per entry of ``curves`` (label -> values) and return (fig, ax)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    for label, values in curves.items():
        ax.plot(as_numpy(values), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax
