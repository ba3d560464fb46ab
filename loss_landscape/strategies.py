"""The ways to evaluate grid points: each computes the loss of G points on a slice of the data.

* ``WholeModel`` ("loop" with one point per pass, "vmap" with several): the model through
  ``torch.func.functional_call`` with the moved parameters; several points per pass with
  ``torch.func.vmap``. Works for any model that takes one input tensor.
* ``FirstLayer`` ("first_layer"): the first layer is linear in its weights,
  ``layer(x; W + a*D1 + b*D2) = z0 + a*z1 + b*z2``; z0, z1, z2 are computed once per slice
  and each point only runs the rest of the network (``tracing.first_layer_split`` proves the
  cut exact).

``grid.py`` chooses among them by timing each on a slice (``choice.py``); nothing here guesses
which is faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.overrides import TorchFunctionMode

from .directions import Direction
from .tracing import FirstLayerSplit, fast_pooling, traced_with_fast_pooling


@dataclass
class Problem:
    """What every strategy evaluates: the loss of ``net`` at ``params + a*d1 + b*d2`` on ``X, Y``."""

    net: nn.Module
    params: dict[str, torch.Tensor]  # the centre, detached
    d1: Direction                    # keyed like params, on their device and dtype
    d2: Direction
    X: torch.Tensor                  # all samples, on the parameters' device
    Y: torch.Tensor
    loss_fn: Callable                # the mean loss of a batch
    acc: torch.dtype                 # what losses are summed in

    @property
    def device(self) -> torch.device:
        return self.X.device

    def moved(self, coefs: torch.Tensor, names, channels_last: bool = False) -> dict[str, torch.Tensor]:
        """The parameters ``names`` at the points ``coefs`` (G, 2): each (G, *shape), or (*shape)
        if G == 1."""
        out = {}
        for name in names:
            p = self.params[name]
            shape = (-1, *([1] * p.dim()))
            t = p.unsqueeze(0).expand(len(coefs), *p.shape)
            if name in self.d1:
                t = t + coefs[:, 0].to(p.dtype).view(shape) * self.d1[name]
            if name in self.d2:
                t = t + coefs[:, 1].to(p.dtype).view(shape) * self.d2[name]
            if len(coefs) == 1:
                t = t[0]
                if channels_last and t.dim() == 4:
                    t = t.contiguous(memory_format=torch.channels_last)
            out[name] = t
        return out

    def losses(self, outs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(G,): the mean loss of each of G points' outputs ``outs`` (G, n, ...) on targets ``y``.

        Plain cross-entropy over class indices is computed for all G points at once as
        ``logsumexp(logits) - logit[target]`` (the same formula; measured 7x faster on a CPU than
        ``log_softmax`` over 10 classes, which dominated the MLP grids); any other loss is
        called once per point.
        """
        if (_is_plain_cross_entropy(self.loss_fn) and outs.dim() == 3 and y.dim() == 1
                and not y.is_floating_point() and not bool((y == getattr(self.loss_fn, "ignore_index", -100)).any())):
            picked = outs.gather(2, y.view(1, -1, 1).expand(outs.shape[0], -1, 1))[..., 0]
            return (outs.logsumexp(2) - picked).mean(1).to(self.acc)
        return torch.stack([self.loss_fn(out, y).detach().to(self.acc).reshape(()) for out in outs])


def _is_plain_cross_entropy(loss_fn) -> bool:
    if loss_fn is torch.nn.functional.cross_entropy:
        return True
    return (type(loss_fn) is nn.CrossEntropyLoss and loss_fn.weight is None
            and loss_fn.label_smoothing == 0 and loss_fn.reduction == "mean")


class _CountActivations(TorchFunctionMode):
    """Counts the elements of every new tensor an operation returns (views are not new)."""

    def __init__(self):
        super().__init__()
        self.elements = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            inputs = [a for a in (*args, *(kwargs or {}).values()) if isinstance(a, torch.Tensor)]
            storage = out.untyped_storage().data_ptr()
            if all(a.untyped_storage().data_ptr() != storage for a in inputs):
                self.elements += out.numel()
        return out


def activations_per_sample(net: nn.Module, sample: torch.Tensor) -> int:
    """Elements of all intermediate tensors of one forward pass, per sample: what one more sample
    (or one more grid point under vmap) costs in memory."""
    counter = _CountActivations()
    with torch.no_grad(), counter:
        net(sample)
    return max(1, counter.elements // len(sample))


class Strategy:
    """Evaluates ``points_per_pass`` grid points at a time, over slices of ``slice_size`` samples.

    ``prepare(coefs)`` does the work of a pass that does not depend on the data (moving the
    parameters), ``losses(prepared, x, y)`` the (G,) mean losses on one slice; ``totals(coefs)``
    sums them over all the data, weighted by the slices' sizes.
    """

    name = ""

    def __init__(self, problem: Problem, points_per_pass: int, slice_size: int):
        self.problem, self.points_per_pass = problem, max(1, points_per_pass)
        self.slice_size = max(1, min(slice_size, len(problem.X)))

    def slices(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        X, Y, s = self.problem.X, self.problem.Y, self.slice_size
        return [(X[i:i + s], Y[i:i + s]) for i in range(0, len(X), s)]

    def prepare(self, coefs: torch.Tensor):
        raise NotImplementedError

    def losses(self, prepared, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def totals(self, coefs: torch.Tensor) -> torch.Tensor:
        prepared = self.prepare(coefs)
        return sum(self.losses(prepared, x, y) * len(y) for x, y in self.slices())

    def __repr__(self) -> str:
        return f"{self.name}(points_per_pass={self.points_per_pass}, slice_size={self.slice_size})"


class WholeModel(Strategy):
    """The whole model per pass: "loop" (one point) or "vmap" (several, through ``torch.func.vmap``).

    ``channels_last``: the input and 4-D weights in channels-last layout (a one-point pass only).
    ``fast_pooling``: plain 2x2 max-pooling as four strided maxima, in a checked trace of the model.
    """

    def __init__(self, problem: Problem, name: str, points_per_pass: int, slice_size: int, *,
                 channels_last: bool = False, fast_pooling: bool = False):
        super().__init__(problem, points_per_pass if name == "vmap" else 1, slice_size)
        self.name = name
        self.channels_last = channels_last and self.points_per_pass == 1 and problem.X.dim() == 4
        traced = traced_with_fast_pooling(problem.net, problem.X[:2]) if fast_pooling else None
        self.model = traced or problem.net
        self.names = [n for n, _ in self.model.named_parameters()]
        self.buffers = dict(self.model.named_buffers())

    def slices(self):
        if not self.channels_last:
            return super().slices()
        return [(x.contiguous(memory_format=torch.channels_last), y) for x, y in super().slices()]

    def _call(self, params, x):
        return functional_call(self.model, {**params, **self.buffers}, (x,))

    def prepare(self, coefs):
        return self.problem.moved(coefs, self.names, self.channels_last), len(coefs)

    def losses(self, prepared, x, y):
        params, n_points = prepared
        if n_points == 1:
            outs = self._call(params, x)[None]
        else:
            outs = vmap(self._call, in_dims=(0, None))(params, x)
        return self.problem.losses(outs, y)


class FirstLayer(Strategy):
    """Grid points from the first layer's linearity (see the module docstring).

    ``cache_budget``: bytes that z0, z1, z2 of all slices may take; within it they are computed
    once per slice, else again for every pass.
    """

    name = "first_layer"

    def __init__(self, problem: Problem, split: FirstLayerSplit, points_per_pass: int, slice_size: int, *,
                 cache_budget: int, fast_pooling: bool = False):
        super().__init__(problem, points_per_pass, slice_size)
        self.split = split
        self.rest = (fast_pooling and _fast_rest(split)) or split.rest
        self.names = [n for n, _ in self.rest.named_parameters()]
        self.cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Size]] = {}
        z0 = self._first_outputs(problem.X[:1])[0]
        self.keep = 3 * len(problem.X) * z0.shape[1] * z0.element_size() <= cache_budget

    def _first_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
        """z0, z1, z2 stacked as (3, elements), and the layer's output shape: the points' first-layer
        outputs are then one matrix product [1, a, b] @ Z."""
        params, name = self.problem.params, self.split.layer_name
        W, B = params[name + ".weight"], params.get(name + ".bias")
        u = self.split.prefix(x)
        outs = [self.split.apply(u, W, B)]
        for d in (self.problem.d1, self.problem.d2):
            db = None if B is None else d.get(name + ".bias", torch.zeros_like(B))
            outs.append(self.split.apply(u, d.get(name + ".weight", torch.zeros_like(W)), db))
        return torch.stack(outs).reshape(3, -1), outs[0].shape

    def _cached(self, x: torch.Tensor):
        key = (x.data_ptr(), len(x))
        if key in self.cache:
            return self.cache[key]
        value = self._first_outputs(x)
        if self.keep:
            self.cache[key] = value
        return value

    def prepare(self, coefs):
        return self.problem.moved(coefs, self.names), coefs

    def losses(self, prepared, x, y):
        params, coefs = prepared
        Z, shape = self._cached(x)
        mix = torch.cat([torch.ones_like(coefs[:, :1]), coefs], 1).to(Z.dtype)  # (G, 3)
        zg = (mix @ Z).view(len(coefs), *shape)                                    # (G, n, ...)
        if len(coefs) == 1:
            outs = functional_call(self.rest, params, (x, zg[0]))[None]
        else:
            outs = vmap(lambda p, z: functional_call(self.rest, p, (x, z)))(params, zg)
        return self.problem.losses(outs, y)


def _fast_rest(split: FirstLayerSplit):
    """The rest of a split model with fast pooling (unchecked: ``max_pool_2x2`` is bitwise the
    same, and the rest has two inputs that no sample provides)."""
    return fast_pooling(split.rest)
