"""What a matplotlib figure shows, read back for tests: judged by the data drawn, not how.

A student may draw a curve with ``plot`` or ``scatter``, draw a reference line first,
mark a point with a one-point line or a scatter, split a path into markers and a line.
Figure checks therefore look for the expected data among *everything* drawn in a panel
(lines, scatter and line collections, bars), never at "the first line" of it. Used by
visible and hidden tests of every assignment that asks for a figure.
"""

from __future__ import annotations

import numpy as np

COLORBAR_LABEL = "<colorbar>"


def main_axes(fig) -> list:
    """The panels of ``fig`` that hold plots: every axes except colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != COLORBAR_LABEL]


def _finite_rows(xy) -> np.ndarray:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return xy[np.isfinite(xy).all(axis=1)]


def drawn_xy(ax) -> list[np.ndarray]:
    """Every set of points drawn in ``ax`` as an (n, 2) array of data coordinates:
    lines (``plot``), point collections (``scatter``), the segments of line collections
    (``hlines``, ``LineCollection``), and the tops of bars (``bar``) as (centre, height)."""
    from matplotlib.collections import LineCollection

    drawn = [_finite_rows(line.get_xydata()) for line in ax.lines]
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            drawn += [_finite_rows(segment) for segment in collection.get_segments()]
        else:
            offsets = collection.get_offsets()
            if len(offsets):
                drawn.append(_finite_rows(offsets))
    bars = [(p.get_x() + p.get_width() / 2, p.get_height()) for p in ax.patches if hasattr(p, "get_height")]
    if bars:
        drawn.append(_finite_rows(bars))
    return [xy for xy in drawn if len(xy)]


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def shows_curve(ax, expected, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """True if one artist in ``ax`` draws ``expected``: (n, 2) points in order, or, for a
    1-D ``expected``, n y-values at any x (a curve over steps, epochs, ...). Points that
    are not finite (a diverged run) are not drawn by matplotlib, so they are not required."""
    expected = np.asarray(expected, dtype=float)
    expected = expected[np.isfinite(expected)] if expected.ndim == 1 else _finite_rows(expected)
    for xy in drawn_xy(ax):
        if expected.ndim == 1 and _close(xy[:, 1], expected, rtol, atol):
            return True
        if expected.ndim == 2 and _close(xy, expected, rtol, atol):
            return True
    return False


def shows_point(ax, point, atol: float = 1e-6) -> bool:
    """True if the point (x, y) is among the points of any artist drawn in ``ax``."""
    point = np.asarray(point, dtype=float).reshape(1, 2)
    return any(bool(np.isclose(xy, point, atol=atol, rtol=0).all(axis=1).any()) for xy in drawn_xy(ax))


def check_curve(ax, expected, name: str, hint: str = "", rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """AssertionError unless ``ax`` draws ``expected`` (see ``shows_curve``); no numbers in the message."""
    if not shows_curve(ax, expected, rtol, atol):
        message = f"the figure does not show {name}"
        raise AssertionError(f"{message}. {hint}".strip() if hint else message)


def check_point(ax, point, name: str, hint: str = "", atol: float = 1e-6) -> None:
    """AssertionError unless the point is drawn in ``ax`` (as a marker, a scatter, or on a line)."""
    if not shows_point(ax, point, atol):
        message = f"the figure does not mark {name}"
        raise AssertionError(f"{message}. {hint}".strip() if hint else message)


def legend_labels(ax) -> list[str]:
    """The labels of the legend of ``ax`` (empty if it has none)."""
    legend = ax.get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend else []
