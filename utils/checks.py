"""Assertions for notebook tests whose messages tell the student what to look at.

Used by visible and hidden tests alike. Each check raises AssertionError with
a message that names the variable under test, so a failed test reads as advice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .figures import main_axes


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (np.ndarray, list, tuple, float, int)):
        try:
            return torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            pass
    raise AssertionError(f"{name} should be a tensor (or numbers), but it is a {type(value).__name__}")


def check_tensor(value, name: str, shape: Sequence[int] | None = None) -> torch.Tensor:
    """``value`` must be a torch.Tensor (of ``shape``, when given) with finite entries."""
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{name} should be a torch.Tensor, but it is a {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{name} should have shape {tuple(shape)}, but has shape {tuple(value.shape)}")
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise AssertionError(f"{name} contains NaN or inf: look for a division by zero or a diverging update")
    return value


def check_close(actual, expected, name: str, rtol: float = 1e-4, atol: float = 1e-6, hint: str = "") -> None:
    """``actual`` must match ``expected`` in shape and value, up to float tolerance."""
    a = _as_tensor(actual, name).double()
    e = _as_tensor(expected, "expected").double()
    if a.numel() == e.numel() and a.shape != e.shape:
        a = a.reshape(e.shape)  # a (3, 1) answer for a (3,) value is fine
    if a.shape != e.shape:
        raise AssertionError(f"{name} should have shape {tuple(e.shape)}, but has shape {tuple(a.shape)}")
    if not torch.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
        # No numbers in the message: hidden tests use this check, and the size of the
        # difference would give their expected values away in the feedback.
        message = f"{name} is not correct"
        raise AssertionError(f"{message}. {hint}".strip() if hint else message)


def check_number(value, name: str) -> float:
    """``value`` must be a finite real number (a Python number or a one-element tensor)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise AssertionError(f"{name} should be a single number, but has shape {tuple(value.shape)}")
        value = value.detach().item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise AssertionError(f"{name} should be a number, but it is a {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise AssertionError(f"{name} is {value}: look for a division by zero or a diverging update")
    return float(value)


def check_figure(fig, name: str, n_axes: int | None = None) -> None:
    """``fig`` must be a matplotlib figure whose axes all have labelled x and y axes."""
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise AssertionError(f"{name} should be a matplotlib Figure (from plt.subplots), not {type(fig).__name__}")
    axes = main_axes(fig)
    if n_axes is not None and len(axes) != n_axes:
        raise AssertionError(f"{name} should have {n_axes} panel(s), but has {len(axes)}")
    for i, ax in enumerate(axes):
        if not ax.has_data():
            raise AssertionError(f"panel {i} of {name} is empty: plot something into it")
        if not ax.get_xlabel() or not ax.get_ylabel():
            raise AssertionError(f"panel {i} of {name} needs labels on both axes (ax.set_xlabel, ax.set_ylabel)")


def check_optimizer_step(make_optimizer, start, grad, expected, name: str, hint: str = "") -> None:
    """One ``step()`` of an optimizer from ``start`` with gradient ``grad`` must land on
    ``expected``, and the parameter must stay a leaf tensor that requires gradients.

    ``make_optimizer`` takes the list of parameters: ``lambda ps: SGD(ps, lr=0.1)``.
    Used in: optimizers 2.1, 2.2, 2.4, 2.5.
    """
    p = start.detach().clone().requires_grad_(True)
    optimizer = make_optimizer([p])
    p.grad = grad.detach().clone().to(p)
    optimizer.step()
    check_close(p, expected, name, hint=hint)
    if not (p.is_leaf and p.requires_grad):
        raise AssertionError(f"{name}: the parameter should stay a leaf tensor that requires gradients "
                             "(update it in place, inside torch.no_grad())")
