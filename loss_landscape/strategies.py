"""The ways to evaluate grid points: each gives the summed loss of G points over the data.

* ``WholeModel`` ("loop" with one point per pass, "vmap" with several): the model through
  ``torch.func.functional_call`` with the moved parameters; several points per pass with
  ``torch.func.vmap``. Works for any model that takes one input tensor.
* ``FirstLayer`` ("first_layer"): the first layer is linear in its weights,
  ``layer(x; W + a*D1 + b*D2) = z0 + a*z1 + b*z2``; z0, z1, z2 are computed once per slice
  and each point only runs the rest of the network (``tracing.first_layer_split`` proves the
  cut exact).

Every strategy swaps the parameters in once per pass for all slices of the data:
``functional_call`` costs 30-70 us a call here, which once per slice of 256 samples came to
0.4-0.9 ms per grid point of 3,200 samples. ``choice.py`` picks among the strategies by timing
each on a slice; nothing here guesses which is faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.overrides import TorchFunctionMode

from .directions import Direction
from .tracing import FirstLayerSplit, fast_trace

# Bytes of model outputs one call may hold for all its slices (G points x samples x outputs).
OUTPUT_BUDGET = 32 << 20


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
    fast_cross_entropy: bool = field(init=False)

    def __post_init__(self):
        # Checked once for all targets: plain cross-entropy over class indices, none ignored.
        Y, ignored = self.Y, getattr(self.loss_fn, "ignore_index", -100)
        self.fast_cross_entropy = (_is_plain_cross_entropy(self.loss_fn) and Y.dim() == 1
                                   and not Y.is_floating_point() and not bool((Y == ignored).any()))

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
        ``log(sum(exp(logits - max))) - (logit[target] - max)`` (log_softmax's formula; measured
        4-7x faster on a CPU than ``cross_entropy`` under vmap or in a loop over the points, and
        faster for one point too); any other loss is called once per point.
        """
        if self.fast_cross_entropy and outs.dim() == 3:
            # Shifted by the maximum first, as log_softmax does: logsumexp(logits) - logit[target]
            # loses the digits of a small loss to the size of the logits.
            shifted = outs - outs.amax(2, keepdim=True)
            picked = shifted.gather(2, y.view(1, -1, 1).expand(outs.shape[0], -1, 1))[..., 0]
            return (shifted.exp().sum(2).log() - picked).to(self.acc).mean(1)  # the sum over samples in acc
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


def profile(net: nn.Module, sample: torch.Tensor) -> tuple[int, int]:
    """(elements of all intermediate tensors, elements of the output), per sample, from one
    forward pass: what one more sample (or one more grid point under vmap) costs in memory."""
    counter = _CountActivations()
    with torch.no_grad(), counter:
        out = net(sample)
    n = len(sample)
    return max(1, counter.elements // n), max(1, out.numel() // n if isinstance(out, torch.Tensor) else 1)


class _Outputs(nn.Module):
    """The model's outputs on several pieces of data, for the parameters ``functional_call``
    gives it: one call, one swap of the parameters, however many slices.

    A piece is ``(x, y)``, or ``(x, y, Z, shape)`` for a model that continues from the first
    layer's output, which is then ``(mix @ Z).view(shape)`` with ``mix = [1, a, b]``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pieces, mix: torch.Tensor | None = None) -> list[torch.Tensor]:
        outs = []
        for x, _, *first in pieces:
            if first:
                Z, shape = first
                outs.append(self.model(x, (mix.to(Z.dtype) @ Z).view(shape)))
            else:
                outs.append(self.model(x))
        return outs


class Strategy:
    """Evaluates ``points_per_pass`` grid points per pass over the data, in slices of
    ``slice_size`` samples.

    ``pieces(x, y)`` cuts data into what a pass reads (once for all the data, once for the
    trial's slice); ``run(coefs, pieces)`` gives the (G,) sums of the loss over the pieces at
    the G points ``coefs``; ``totals(coefs)`` does that over all the data.
    """

    name = ""

    def __init__(self, problem: Problem, points_per_pass: int, slice_size: int, model: nn.Module,
                 outputs_per_sample: int):
        self.problem, self.points_per_pass = problem, max(1, points_per_pass)
        self.slice_size = max(1, min(slice_size, len(problem.X)))
        self.outputs = _Outputs(model)
        self.names = [n for n, _ in model.named_parameters()]
        self.buffers = {"model." + n: b for n, b in model.named_buffers()}
        per_sample = self.points_per_pass * outputs_per_sample * problem.X.element_size()
        self.group = max(1, OUTPUT_BUDGET // (per_sample * self.slice_size))  # slices per call
        self._all: list | None = None

    def pieces(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple]:
        s = self.slice_size
        return [(self.layout(x[i:i + s]), y[i:i + s]) for i in range(0, len(x), s)]

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the memory layout this strategy computes with."""
        return x

    def all_pieces(self) -> list[tuple]:
        """All the data's pieces, made once (every pass reads them all)."""
        if self._all is None:
            self._all = self.pieces(self.problem.X, self.problem.Y)
        return self._all

    def call(self, params: dict[str, torch.Tensor], pieces: list[tuple], coefs: torch.Tensor) -> list[torch.Tensor]:
        """The (G, n, ...) outputs on each piece at the points ``coefs`` (parameters ``params``)."""
        raise NotImplementedError

    def run(self, coefs: torch.Tensor, pieces: list[tuple], channels_last: bool = False) -> torch.Tensor:
        moved = self.problem.moved(coefs, self.names, channels_last)
        params = {"model." + n: t for n, t in moved.items()}
        totals = torch.zeros(len(coefs), dtype=self.problem.acc, device=self.problem.device)
        for start in range(0, len(pieces), self.group):
            group = pieces[start:start + self.group]
            outs = self.call(params, group, coefs)
            if self.problem.fast_cross_entropy:  # a mean over samples: one call for the whole group
                y = torch.cat([piece[1] for piece in group])
                totals += self.problem.losses(torch.cat(outs, 1), y) * len(y)
            else:  # any other loss sees the slices as batches
                for out, (_, y, *_) in zip(outs, group):
                    totals += self.problem.losses(out, y) * len(y)
        return totals

    def totals(self, coefs: torch.Tensor) -> torch.Tensor:
        return self.run(coefs, self.all_pieces())

    @property
    def label(self) -> str:
        """The name, told apart from the same strategy in another set-up."""
        return self.name

    def __repr__(self) -> str:
        return f"{self.label}(points_per_pass={self.points_per_pass}, slice_size={self.slice_size})"


class WholeModel(Strategy):
    """The whole model per pass: "loop" (one point) or "vmap" (several, through ``torch.func.vmap``).

    ``channels_last``: the input and 4-D weights in channels-last layout (a one-point pass only).
    ``fast``: a checked trace of the model with faster pooling and folded BatchNorms
    (``tracing.speed_up``), where one applies.
    """

    def __init__(self, problem: Problem, name: str, points_per_pass: int, slice_size: int,
                 outputs_per_sample: int, *, channels_last: bool = False, fast: bool = False):
        traced = fast_trace(problem.net, problem.X[:2]) if fast else None
        G = points_per_pass if name == "vmap" else 1
        super().__init__(problem, G, slice_size, traced or problem.net, outputs_per_sample)
        self.name = name
        self.channels_last = channels_last and self.points_per_pass == 1 and problem.X.dim() == 4

    @property
    def label(self) -> str:
        return self.name + (" channels_last" if self.channels_last else "")

    def layout(self, x):
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def run(self, coefs, pieces):
        return super().run(coefs, pieces, self.channels_last)

    def call(self, params, pieces, coefs):
        def outputs(p):
            return functional_call(self.outputs, {**p, **self.buffers}, (pieces,))

        if len(coefs) == 1:
            return [out[None] for out in outputs(params)]
        return vmap(outputs)(params)


class FirstLayer(Strategy):
    """Grid points from the first layer's linearity (see the module docstring).

    ``cache_budget``: bytes that z0, z1, z2 of all the data may take; within it they are
    computed once, else again for every pass.
    """

    name = "first_layer"

    def __init__(self, problem: Problem, split: FirstLayerSplit, points_per_pass: int, slice_size: int,
                 outputs_per_sample: int, *, cache_budget: int):
        super().__init__(problem, points_per_pass, slice_size, split.rest, outputs_per_sample)
        self.split = split
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

    def pieces(self, x, y):
        return [(x, y, *self._first_outputs(x)) for x, y in super().pieces(x, y)]

    def all_pieces(self):
        if self.keep:
            return super().all_pieces()
        return self.pieces(self.problem.X, self.problem.Y)  # z0, z1, z2 too large to keep

    def call(self, params, pieces, coefs):
        def outputs(p, mix):
            return functional_call(self.outputs, {**p, **self.buffers}, (pieces, mix))

        mix = torch.cat([torch.ones_like(coefs[:, :1]), coefs], 1)  # (G, 3): [1, a, b] per point
        if len(coefs) == 1:
            return [out[None] for out in outputs(params, mix[0])]
        return vmap(outputs)(params, mix)
