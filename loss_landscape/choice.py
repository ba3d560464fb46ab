"""Which strategy evaluates a grid: the candidates, each timed on a slice, the fastest kept.

No rule of thumb can say in advance whether batching grid points pays: it did for small MLPs
and cost 4x on a small CNN with BatchNorm whose multiply-adds looked just as small. So
``strategy="auto"`` times every candidate that applies (the first-layer shortcut where a trace
proves it exact, ``vmap`` over several points, the one-point loop) on the grid's first points
and a slice of the data, in interleaved rounds after a warm-up, and commits to the fastest per
point. The trial is a few percent of the grid at most; the loop is always a candidate, so the
grid is never materially slower than the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch

from .strategies import FirstLayer, Problem, Strategy, WholeModel, activations_per_sample
from .tracing import first_layer_split

STRATEGIES = ("auto", "first_layer", "vmap", "loop")

# Samples per slice. On a CPU 256 beat both 64 and all 3,200 at once (cache), for every strategy.
CPU_SLICE, GPU_SLICE = 256, 4096
# Bytes of activations per batched pass on a CPU (G points x a slice): about what the caches
# hold; more points per pass than that were slower per point (measured on the MLPs).
CPU_WORKING_SET = 8 << 20
# Bytes the first-layer outputs z0, z1, z2 of all the data may occupy on a CPU.
CPU_CACHE_BUDGET = 256 << 20
# The trial: timed rounds after one warm-up round, and the share of the grid's work it may take.
TRIAL_ROUNDS = 2
TRIAL_SHARE = 0.03


def _budgets(device: torch.device, memory_budget: int | None) -> tuple[int, int]:
    """(bytes of activations per pass, bytes for cached first-layer outputs) on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = int(min(free // 4, 8 << 30))
        return memory_budget or budget, budget
    return memory_budget or CPU_WORKING_SET, max(memory_budget or 0, CPU_CACHE_BUDGET)


def candidates(problem: Problem, strategy: str, n_points: int, points_per_pass: int | None = None,
               slice_size: int | None = None, memory_budget: int | None = None) -> list[Strategy]:
    """The strategies to try: all that apply for "auto", else the one asked for.

    ``points_per_pass`` / ``slice_size`` / ``memory_budget`` override the automatic sizes: the
    slice is ``CPU_SLICE`` / ``GPU_SLICE`` samples, and the batched strategies take as many points
    per pass as keep the activations within the budget.
    """
    device, sample = problem.device, problem.X[: min(len(problem.X), 2)]
    on_cpu = device.type == "cpu"
    working_set, cache_budget = _budgets(device, memory_budget)
    slice_size = max(1, min(slice_size or (CPU_SLICE if on_cpu else GPU_SLICE), len(problem.X)))
    per_point = slice_size * activations_per_sample(problem.net, sample) * problem.X.element_size()
    batched = min(n_points, points_per_pass or max(1, working_set // per_point))

    found = []
    if strategy in ("auto", "first_layer"):
        split = first_layer_split(problem.net, sample)
        if split is None and strategy == "first_layer":
            raise ValueError("strategy='first_layer' needs a model whose first parametrised layer is a "
                             "Linear/Conv applied to the input, traceable by torch.fx; use 'auto'")
        if split is not None:
            found.append(FirstLayer(problem, split, batched, slice_size, cache_budget=cache_budget,
                                    fast_pooling=on_cpu))
    # vmap over one point is the loop: "auto" tries it only where a pass holds several points.
    if strategy == "vmap" or (strategy == "auto" and batched > 1):
        found.append(WholeModel(problem, "vmap", batched, slice_size, fast_pooling=on_cpu))
    if strategy in ("auto", "loop"):
        found.append(WholeModel(problem, "loop", 1, slice_size, channels_last=on_cpu, fast_pooling=on_cpu))
    return found


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def trial_samples(found: Sequence[Strategy], n_points: int, n_samples: int) -> int:
    """Samples in the trial's slice: a full slice, unless that would take more than
    ``TRIAL_SHARE`` of the grid's work (points x samples); never under 16 (timer resolution)."""
    per_sample = (TRIAL_ROUNDS + 1) * sum(min(s.points_per_pass, n_points) for s in found)
    share = math.floor(TRIAL_SHARE * n_points * n_samples / per_sample)
    slice_size = max(s.slice_size for s in found)
    return min(n_samples, max(16, min(slice_size, share)))


def fastest(found: Sequence[Strategy], coefs: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            timer: Callable[[], float] = time.perf_counter) -> tuple[Strategy, dict[str, float]]:
    """The candidate with the least time per grid point on the slice ``x, y``, and every
    candidate's seconds per point there.

    Each candidate evaluates its first ``points_per_pass`` rows of ``coefs`` (the grid's own
    points) once to warm up, then ``TRIAL_ROUNDS`` times, in alternating order; its time is the
    minimum of those rounds (the least disturbed by other work on the machine). A candidate
    that fails (an operation vmap does not support, say) is dropped; if all fail, the last
    error is raised.
    """
    alive, costs, error = list(found), {s.name: math.inf for s in found}, None
    for round_ in range(TRIAL_ROUNDS + 1):
        for strategy in list(alive if round_ % 2 == 0 else reversed(alive)):
            points = coefs[: strategy.points_per_pass]
            start = timer()
            try:
                strategy.losses(strategy.prepare(points), x, y)
                _synchronize(x.device)
            except Exception as exc:  # a strategy this model does not support is not a candidate
                alive.remove(strategy)
                costs.pop(strategy.name)
                error = exc
                continue
            if round_ > 0:
                costs[strategy.name] = min(costs[strategy.name], (timer() - start) / len(points))
    if not alive:
        raise error
    return min(alive, key=lambda s: costs[s.name]), costs
