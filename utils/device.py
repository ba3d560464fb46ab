"""Pick the fastest device available: CUDA, else Apple's MPS, else the CPU."""

from __future__ import annotations

import os

import torch

# Set COURSE_DEVICE=cpu (or cuda, mps) to override the automatic choice,
# e.g. to grade on the CPU of a machine that has a GPU.
OVERRIDE_VARIABLE = "COURSE_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def get_device() -> torch.device:
    """Return the device that course code should put tensors and models on."""
    forced = os.environ.get(OVERRIDE_VARIABLE, "").strip()
    if forced:
        device = torch.device(forced)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{OVERRIDE_VARIABLE}={forced} but CUDA is not available here")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"{OVERRIDE_VARIABLE}={forced} but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")
