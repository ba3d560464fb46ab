"""Spies the hidden tests use to see how the student's code did something, not just what.

Used in: autodiff 2.1/2.3/2.5, optimizers 2.x, landscape (rules "write the update yourself").
"""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def optimizers_created(allowed: type | None = None):
    """Yield a list that collects the class names of torch.optim optimizers created inside
    the block (except ``allowed``, the student's own Optimizer subclass); the caller asserts."""
    original = torch.optim.Optimizer.__init__
    created: list[str] = []

    def spy(self, *args, **kwargs):
        if allowed is None or type(self) is not allowed:
            created.append(type(self).__name__)
        return original(self, *args, **kwargs)

    torch.optim.Optimizer.__init__ = spy
    try:
        yield created
    finally:
        torch.optim.Optimizer.__init__ = original
