"""Helpers shared by the course notebooks: device, seeding, progress, data, plots, checks.

Notebooks import from here rather than copying helpers into cells, so every
helper is tested once (tests/test_utils_*.py) and fixed in one place.
"""

from .device import get_device
from .progress import progress
from .seed import seed_everything

__all__ = ["get_device", "progress", "seed_everything"]
