"""Which strategy evaluates a grid: the candidates, each timed on a slice, the fastest kept.

No rule of thumb can say in advance whether batching grid points pays: it did for small MLPs
(2-3x) and cost 2-6x on a small CNN with BatchNorm whose multiply-adds looked just as small. So
``strategy="auto"`` times every candidate that applies (the first-layer shortcut where a trace
proves it exact, ``vmap`` over several points, the one-point loop) in interleaved rounds after
a warm-up, and commits to the fastest per point. A one-point candidate is timed on real grid
points over all the data (kept: they cost nothing extra); a batched one on its first pass of
points over a slice of the data, at most a few percent of the grid's work. The loop is always
a candidate and wins ties, so the grid is never materially slower than the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .strategies import FirstLayer, Problem, Strategy, WholeModel, profile
from .tracing import first_layer_split

STRATEGIES = ("auto", "first_layer", "vmap", "loop")

# Samples per slice. On a CPU 256 beat 64 and 1,024 (cache) for the CNNs and for the MLPs' batched
# strategies.
CPU_SLICE, GPU_SLICE = 256, 4096
# Bytes per batched pass on a CPU (G points x (their parameters + a slice's activations)): about
# what the caches hold; more points per pass than that were slower per point (measured on the MLPs).
CPU_WORKING_SET = 8 << 20
# At most this many points per pass on a CPU: 40 were within 10 % of 16-20 per point for the MLPs,
# and every point more makes each pass's copies of the parameters (and the trial) larger.
CPU_MAX_POINTS = 32
# Bytes the first-layer outputs z0, z1, z2 of all the data may occupy on a CPU.
CPU_CACHE_BUDGET = 256 << 20
# The trial: timed rounds after one warm-up round, and the share of the grid's work it may take.
TRIAL_ROUNDS = 2
TRIAL_SHARE = 0.03
# Another strategy replaces the loop only if it takes under this share of the loop's time per
# point: timing on one small slice, warm in the caches, flatters strategies that read more
# memory per sample (a residual CNN's first-layer outputs looked 5 % ahead of the loop on one
# slice and were 15 % behind over all the data); where batching pays, it pays 1.5-10x.
LOOP_MARGIN = 0.9


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
    per pass as keep their parameters and a slice's activations within the budget.
    """
    device, sample = problem.device, problem.X[: min(len(problem.X), 2)]
    on_cpu = device.type == "cpu"
    working_set, cache_budget = _budgets(device, memory_budget)
    slice_size = max(1, min(slice_size or (CPU_SLICE if on_cpu else GPU_SLICE), len(problem.X)))
    activations, outputs = profile(problem.net, sample)
    parameters = sum(p.numel() for p in problem.params.values())
    per_point = (parameters + slice_size * activations) * problem.X.element_size()
    most = n_points if not on_cpu or memory_budget else min(n_points, CPU_MAX_POINTS)
    batched = points_per_pass or min(most, max(1, working_set // per_point))

    found = []
    if strategy in ("auto", "first_layer"):
        split = first_layer_split(problem.net, sample, fast=on_cpu)
        if split is None and strategy == "first_layer":
            raise ValueError("strategy='first_layer' needs a model whose first parametrised layer is a "
                             "Linear/Conv applied to the input, traceable by torch.fx; use 'auto'")
        if split is not None:
            found.append(FirstLayer(problem, split, batched, slice_size, outputs, cache_budget=cache_budget))
    # vmap over one point is the loop: "auto" tries it only where a pass holds several points.
    if strategy == "vmap" or (strategy == "auto" and batched > 1):
        found.append(WholeModel(problem, "vmap", batched, slice_size, outputs, fast=on_cpu))
    if strategy in ("auto", "loop"):
        found.append(WholeModel(problem, "loop", 1, slice_size, outputs, fast=on_cpu))
    # Channels-last convolutions were faster on a CPU for the GarmentClassifier, slower for a
    # residual CNN with BatchNorm: "auto" tries both.
    if strategy == "auto" and on_cpu and problem.X.dim() == 4:
        found.append(WholeModel(problem, "loop", 1, slice_size, outputs, channels_last=True, fast=True))
    return found


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def trial_clock(device: torch.device) -> Callable[[], float]:
    """The clock the trial reads: on a CPU with one thread the time this process computed (on a
    machine shared with other work, wall time also counts the time others held the CPU, which
    flipped choices here), else wall time (other threads, an accelerator)."""
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.process_time
    return time.perf_counter


def trial_samples(found: Sequence[Strategy], n_points: int, n_samples: int) -> int:
    """Samples in the slice that the batched candidates are timed on: a full slice, unless that
    would take more than ``TRIAL_SHARE`` of the grid's work (points x samples); never under 16."""
    batched = sum(min(s.points_per_pass, n_points) for s in found if s.points_per_pass > 1)
    if not batched:
        return min(n_samples, max(s.slice_size for s in found))
    share = math.floor(TRIAL_SHARE * n_points * n_samples / ((TRIAL_ROUNDS + 1) * batched))
    return min(n_samples, max(16, min(max(s.slice_size for s in found), share)))


@dataclass
class Trial:
    """What the trial measured: seconds per grid point over all the data (by label), and the
    loss totals of the grid points it computed over all the data (by index), which are kept."""

    costs: dict[str, float] = field(default_factory=dict)
    done: dict[int, torch.Tensor] = field(default_factory=dict)


def _timed_pass(strategy: Strategy, coefs: torch.Tensor, trial: Trial, head: list, n_head: int,
                timer: Callable[[], float]) -> float:
    """Seconds per grid point over all the data, from one pass of ``strategy``.

    One point per pass: the pass is a real grid point over all the data (its true cost, and
    its total kept). Several: the pass covers the first ``points_per_pass`` points on the trial's
    slice (``head``, ``n_head`` samples) and is scaled to all the data; its per-pass overhead is
    then spread over one slice instead of all, which errs on the loop's side.
    """
    problem = strategy.problem
    start = timer()
    if strategy.points_per_pass == 1:
        index = next((i for i in range(len(coefs)) if i not in trial.done), 0)
        total = strategy.totals(coefs[index:index + 1])
        _synchronize(problem.device)
        trial.done.setdefault(index, total)
        return timer() - start
    points = coefs[: strategy.points_per_pass]
    strategy.run(points, head)
    _synchronize(problem.device)
    return (timer() - start) / len(points) * len(problem.X) / n_head


def fastest(found: Sequence[Strategy], coefs: torch.Tensor, n_head: int,
            timer: Callable[[], float] | None = None) -> tuple[Strategy, Trial]:
    """The candidate with the least time per grid point, and the ``Trial`` (every candidate's
    seconds per point, the grid points it computed).

    Each candidate makes one pass to warm up, then ``TRIAL_ROUNDS`` timed passes, in alternating
    order (see ``_timed_pass``); its time is the minimum of those rounds (the least disturbed by
    other work on the machine). Another strategy wins over the loop only by a margin
    (``LOOP_MARGIN``). A candidate that fails (an operation vmap does not support, say) is
    dropped; if all fail, the last error is raised.
    """
    problem = found[0].problem
    timer = timer or trial_clock(problem.device)
    alive, trial, error = list(found), Trial(), None
    costs = {s: math.inf for s in found}
    heads = {s: s.pieces(problem.X[:n_head], problem.Y[:n_head]) for s in found if s.points_per_pass > 1}
    for round_ in range(TRIAL_ROUNDS + 1):
        for strategy in list(alive if round_ % 2 == 0 else reversed(alive)):
            try:
                seconds = _timed_pass(strategy, coefs, trial, heads.get(strategy), n_head, timer)
            except Exception as exc:  # a strategy this model does not support is not a candidate
                alive.remove(strategy)
                costs.pop(strategy)
                error = exc
                continue
            if round_ > 0:
                costs[strategy] = min(costs[strategy], seconds)
    if not alive:
        raise error
    best = min(alive, key=costs.get)
    loops = [s for s in alive if s.name == "loop"]
    if loops and best.name != "loop":
        loop = min(loops, key=costs.get)
        best = best if costs[best] < LOOP_MARGIN * costs[loop] else loop
    trial.costs = {s.label: cost for s, cost in costs.items()}
    return best, trial
