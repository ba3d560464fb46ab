"""Make runs repeatable: one call seeds every random number generator we use."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a seeded torch.Generator.

    The returned generator is handy for DataLoader(shuffle=True, generator=...),
    which then shuffles the same way on every run.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
