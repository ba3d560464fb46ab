"""The loss on a 2-D grid of points ``theta + alpha*d1 + beta*d2`` around a model's parameters.

Grids follow plotly's orientation: ``z[i, j]`` is the loss at ``(x[j], y[i])``. The loss is
averaged per **sample** over the whole data (not a mean of batch means), with the model in
``eval`` mode and without gradients. The model is left exactly as it was: parameters, buffers,
train/eval flags and ``requires_grad`` (parameters are swapped in with
``torch.func.functional_call``, never written into the model).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .choice import STRATEGIES, Trial, candidates, fastest, trial_samples
from .directions import BUFFER_NAMES, Direction, TrajectoryPCA
from .strategies import Problem, Strategy


@dataclass(frozen=True)
class LossGrid:
    """The loss over a grid: ``z[i, j]`` is the loss at ``(x[j], y[i])``.

    It also unpacks as four values, ``x, y, z, directions = get_loss_grid(...)``, for code
    written against the four-value form.
    """

    x: torch.Tensor  # (nx,) coefficients of direction 1
    y: torch.Tensor  # (ny,) coefficients of direction 2
    z: torch.Tensor  # (ny, nx)
    strategy: str = ""  # how it was computed
    directions: tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]] | None = None  # (d1, d2)

    def __iter__(self) -> Iterator:
        return iter((self.x, self.y, self.z, self.directions))


# ---- the arguments ---------------------------------------------------------------------------

def _axis(n: int, r) -> torch.Tensor:
    if isinstance(r, (int, float)):
        lo, hi = -float(r), float(r)
    else:
        lo, hi = (float(v) for v in r)
    if not (n >= 1 and hi >= lo):
        raise ValueError(f"a grid axis needs resolution >= 1 and min <= max, got {n} over ({lo}, {hi})")
    return torch.linspace(lo, hi, n, dtype=torch.float64)


def _grid_axes(resolution, scale) -> tuple[torch.Tensor, torch.Tensor]:
    nx, ny = (resolution, resolution) if isinstance(resolution, int) else resolution
    if isinstance(scale, (int, float)):
        sx = sy = scale
    else:
        sx, sy = scale
    return _axis(int(nx), sx), _axis(int(ny), sy)


def _collect_data(data, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """All samples as two tensors on ``device`` (normalised once, by whatever the data does)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        xs, ys = [data[0]], [data[1]]
    else:
        if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
            data = torch.utils.data.DataLoader(data, batch_size=512)
        if not isinstance(data, Iterable):
            raise TypeError("data must be a DataLoader (or any iterable of (inputs, targets) batches), "
                            f"a Dataset, or a pair (inputs, targets) of tensors; got {type(data).__name__}")
        xs, ys = [], []
        for batch in data:
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise TypeError("every batch of data must be a pair (inputs, targets)")
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
    if not xs or sum(len(x) for x in xs) == 0:
        raise ValueError("data holds no samples")
    return torch.cat(xs).to(device), torch.cat(ys).to(device)


def _unwrap_directions(directions) -> tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]]:
    if isinstance(directions, TrajectoryPCA):
        return directions.directions
    if isinstance(directions, Mapping) or len(directions) != 2:
        raise TypeError("directions must be a TrajectoryPCA or a pair (d1, d2) of dicts "
                        "parameter name -> tensor")
    return directions[0], directions[1]


def _renamed_for(d: Mapping[str, torch.Tensor], params: Mapping) -> Mapping[str, torch.Tensor]:
    """A trajectory of an AveragedModel is keyed "module.x"; its inner model "x" (and back)."""
    if not d or set(d) & params.keys():
        return d
    for strip, add in (("module.", ""), ("", "module.")):
        renamed = {add + k[len(strip):]: v for k, v in d.items() if k.startswith(strip)}
        if set(renamed) & params.keys():
            return renamed
    return d


def _match_direction(net: nn.Module, d: Mapping[str, torch.Tensor], which: str) -> Direction:
    """``d`` keyed by ``net``'s parameter names, on the parameters' device and dtype."""
    params, buffers = dict(net.named_parameters()), dict(net.named_buffers())
    out = {}
    for name, t in _renamed_for(d, params).items():
        if name in params:
            p = params[name]
            if t.shape != p.shape:
                raise ValueError(f"direction {which}[{name!r}] has shape {tuple(t.shape)}, "
                                 f"the parameter has {tuple(p.shape)}")
            out[name] = t.detach().to(device=p.device, dtype=p.dtype)
        elif name in buffers or name.rsplit(".", 1)[-1] in BUFFER_NAMES:
            if torch.count_nonzero(t):
                raise ValueError(f"direction {which} moves the buffer {name!r}; buffers are not "
                                 "directions (make directions from parameters only)")
        else:
            raise ValueError(f"direction {which} has {name!r}, which is not a parameter of the model; "
                             "directions must come from this model's parameters")
    if not out:
        raise ValueError(f"direction {which} shares no parameter name with the model")
    return out


def _problem(net, data, loss_fn, directions) -> Problem:
    """The checked arguments of ``get_loss_grid``, data and directions on the model's device."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be an nn.Module, got {type(net).__name__}")
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction != "mean":
        raise ValueError(f"loss_fn must average over the batch (reduction='mean'), it has "
                         f"reduction={reduction!r}; get_loss_grid weights each slice by its size")
    first = next(net.parameters(), None)
    if first is None:
        raise ValueError("the model has no parameters to move")
    d1, d2 = (_match_direction(net, d, w) for d, w in zip(_unwrap_directions(directions), ("d1", "d2")))
    X, Y = _collect_data(data, first.device)
    if X.is_floating_point() and X.dtype != first.dtype:
        X = X.to(first.dtype)
    acc = torch.float32 if first.device.type == "mps" else torch.float64  # MPS has no float64
    return Problem(net, {n: p.detach() for n, p in net.named_parameters()}, d1, d2, X, Y, loss_fn, acc)


# ---- the grid --------------------------------------------------------------------------------

@contextlib.contextmanager
def _evaluating(net: nn.Module):
    """``net`` in eval mode without gradients; every module's train/eval flag restored after.

    vmap's note that an operation runs without a batching rule is silenced: the trial has
    measured what that costs, and text on stderr would cost a graded notebook cell its points.
    """
    modes = {m: m.training for m in net.modules()}
    net.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
            yield
    finally:
        for m, training in modes.items():
            m.training = training


def _progress(items, desc):
    try:
        from utils.progress import progress  # the course's bars: off while nbgrader grades
    except ImportError:  # the loss-landscape files copied somewhere without the utils package
        return items
    return progress(items, desc)


def _chosen(found: list[Strategy], problem: Problem, coefs: torch.Tensor) -> tuple[Strategy, Trial]:
    """The only candidate, or the fastest in a trial (``choice.fastest``)."""
    if len(found) == 1:
        return found[0], Trial()
    return fastest(found, coefs, trial_samples(found, len(coefs), len(problem.X)))


def _evaluate(strategy: Strategy, coefs: torch.Tensor, done: dict[int, torch.Tensor],
              show_progress: bool) -> torch.Tensor:
    """(len(coefs),): the per-sample mean loss at every point, ``points_per_pass`` at a time;
    the totals in ``done`` (points the trial computed) are taken as they are."""
    G, N = strategy.points_per_pass, len(strategy.problem.X)
    totals = torch.zeros(len(coefs), dtype=coefs.dtype, device=coefs.device)
    for index, total in done.items():
        totals[index] = total[0]
    todo = torch.tensor([i for i in range(len(coefs)) if i not in done], dtype=torch.long, device=coefs.device)
    chunks = todo.split(G) if len(todo) else ()  # split() of nothing gives one empty chunk
    for chunk in _progress(chunks, "loss grid") if show_progress else chunks:
        totals[chunk] = strategy.totals(coefs[chunk])
    return totals / N


def get_loss_grid(net: nn.Module, data, loss_fn: Callable, directions, resolution=21, scale=1.0, *,
                  strategy: str = "auto", points_per_pass: int | None = None,
                  slice_size: int | None = None, memory_budget: int | None = None,
                  show_progress: bool = True) -> LossGrid:
    """The loss at ``theta + alpha*d1 + beta*d2`` over a grid, averaged per sample.

    ``net``: any ``nn.Module`` taking one input tensor, on any device (the data goes to the
    device of its parameters). ``data``: a DataLoader (any iterable of ``(inputs, targets)``),
    a Dataset, or a pair of tensors; it is read once. ``loss_fn(outputs, targets)``: the mean
    loss of a batch (``nn.CrossEntropyLoss()``). ``directions``: a ``TrajectoryPCA`` or a pair of
    dicts parameter name -> tensor. ``resolution``: points per axis, an int or ``(nx, ny)``.
    ``scale``: the axes run over ``[-scale, scale]``; or ``(sx, sy)``; or
    ``((x_min, x_max), (y_min, y_max))`` such as ``TrajectoryPCA.grid_range()``.

    Returns a ``LossGrid`` with ``z[i, j]`` the loss at ``(x[j], y[i])`` (it unpacks as
    ``x, y, z, directions``). ``strategy``: "auto" times each strategy that applies and keeps
    the fastest (``choice.py``); "first_layer", "vmap" or "loop" forces one. ``points_per_pass``,
    ``slice_size`` and ``memory_budget`` (bytes per batched pass: its points' parameters and
    activations) override the automatic sizes.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    problem = _problem(net, data, loss_fn, directions)
    xs, ys = _grid_axes(resolution, scale)
    # row-major: y outer, x inner, so that the totals reshape to (ny, nx)
    coefs = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)
    coefs = coefs.to(device=problem.device, dtype=problem.acc)
    with _evaluating(net):
        # The candidates that lose (and their cached data) are freed once the trial is over.
        chosen, trial = _chosen(candidates(problem, strategy, len(coefs), points_per_pass, slice_size,
                                           memory_budget), problem, coefs)
        z = _evaluate(chosen, coefs, trial.done, show_progress).reshape(len(ys), len(xs)).cpu()
    return LossGrid(x=xs.float(), y=ys.float(), z=z.float(), strategy=chosen.name,
                    directions=_unwrap_directions(directions))
