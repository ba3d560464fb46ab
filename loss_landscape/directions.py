"""Directions in parameter space: the plane of a training trajectory (PCA), random directions.

A direction is a dict ``parameter name -> tensor of that parameter's shape`` (names as in
``model.named_parameters()``). Buffers (BatchNorm's running statistics, ``num_batches_tracked``,
an ``AveragedModel``'s ``n_averaged``) are never directions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

Direction = dict[str, torch.Tensor]  # parameter name -> tensor of that parameter's shape

# Names of buffers that may appear in a state_dict; never directions.
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked", "n_averaged")

ONE_D_CHOICES = ("zero", "weights", "random")


@dataclass(frozen=True)
class TrajectoryPCA:
    """The plane of a training trajectory (see ``get_state_directions``).

    It also unpacks as three values, for code written against the three-value form::

        directions, state_ids, coordinates = get_state_directions(states, ...)

    ``directions`` is the pair of dicts, ``state_ids`` the indices of the states used, and
    ``coordinates`` their positions as a ``(2, len(state_ids))`` tensor (row 0: x, row 1: y),
    the transpose of the ``coordinates`` attribute.
    """

    directions: tuple[Direction, Direction]  # unit vectors, orthogonal (over all parameters)
    coordinates: torch.Tensor                # (len(state_ids), 2); the reference state is (0, 0)
    state_ids: list[int]                     # indices into ``states`` of the rows above
    explained_variance: tuple[float, float]  # share of the trajectory's variance, in [0, 1]
    reference_id: int
    reference: Direction                     # the reference state's parameters (the origin)

    def __iter__(self) -> Iterator:
        return iter((self.directions, self.state_ids, self.coordinates.T))

    def project(self, states: Sequence[Mapping[str, torch.Tensor]]) -> torch.Tensor:
        """(len(states), 2): coordinates of any states in this plane, e.g. every step of the run
        when the PCA used only some of them."""
        names = list(self.reference)
        basis = torch.stack([_flatten(d, names) for d in self.directions])
        rows = torch.stack([_flatten(s, names) for s in states]) - _flatten(self.reference, names)
        return (rows @ basis.T).to(self.coordinates.dtype)

    def grid_range(self, margin: float = 0.25) -> tuple[tuple[float, float], tuple[float, float]]:
        """((x_min, x_max), (y_min, y_max)) covering the trajectory and (0, 0), plus ``margin``
        of the extent on every side: pass it as ``scale`` to ``get_loss_grid``."""
        c = torch.cat([self.coordinates, torch.zeros(1, 2, dtype=self.coordinates.dtype)])
        lo, hi = c.min(0).values, c.max(0).values
        span = torch.clamp(hi - lo, min=1e-3)
        lo, hi = lo - margin * span, hi + margin * span
        return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _flatten(state: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    """The entries ``names`` of ``state`` as one float64 vector on the CPU."""
    return torch.cat([state[n].detach().reshape(-1).double().cpu() for n in names])


def _is_direction_entry(name: str, tensor) -> bool:
    return (isinstance(tensor, torch.Tensor) and tensor.is_floating_point()
            and name.rsplit(".", 1)[-1] not in BUFFER_NAMES)


def _parameter_names(states: Sequence[Mapping[str, torch.Tensor]], model: nn.Module | None) -> list[str]:
    if model is not None:
        names = [n for n, _ in model.named_parameters()]
        missing = [n for n in names if n not in states[0]]
        if missing:
            raise ValueError(f"the states have no entry for the model's parameters {missing[:3]}; "
                             "save states with model.state_dict() of this model")
        return names
    return [n for n, t in states[0].items() if _is_direction_entry(n, t)]


def _index(i: int, n: int, what: str) -> int:
    if not -n <= i < n:
        raise IndexError(f"{what}={i} but there are {n} states")
    return i % n


def _chosen_ids(n: int, n_states: int | None, first: int) -> list[int]:
    """``n_states`` indices spread evenly from ``first`` to ``n - 1`` (all if None or more)."""
    candidates = list(range(first, n))
    if n_states is None or n_states >= len(candidates):
        return candidates
    if n_states < 3:
        raise ValueError(f"n_states must be at least 3 (a plane needs 3 points), got {n_states}")
    picks = np.linspace(0, len(candidates) - 1, n_states).round().astype(int)
    return sorted({candidates[i] for i in picks})


def _principal_plane(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """(components (2, P), coordinates (n, 2), explained variance) of ``rows`` (n, P), float64.

    Deterministic: a full SVD, and each component's sign fixed so that the first row has a
    negative coordinate (the path runs towards +x and +y).
    """
    centred = rows - rows.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    variance = s ** 2
    if len(s) < 2 or variance[1] <= variance.sum() * 1e-24:
        raise ValueError("the chosen states span less than a plane (the parameters barely "
                         "changed, or too few distinct states); train longer or choose more states")
    components = vh[:2].clone()
    components[:, (rows == 0).all(0)] = 0  # entries that never moved: exactly 0, not SVD round-off
    coordinates = rows @ components.T
    for k in range(2):
        c0 = coordinates[0, k]
        # A first row at the origin gives no sign: then the largest entry is made positive.
        flip = c0 > 0 if abs(float(c0)) > 1e-12 else components[k, components[k].abs().argmax()] < 0
        if flip:
            components[k] = -components[k]
            coordinates[:, k] = -coordinates[:, k]
    return components, coordinates, (variance[:2] / variance.sum()).tolist()


def _unflatten(vector: torch.Tensor, like: Mapping[str, torch.Tensor], names: Sequence[str]) -> Direction:
    """``vector`` cut into tensors of the shapes and dtypes of ``like[name]``."""
    out, offset = {}, 0
    for name in names:
        size = math.prod(like[name].shape)
        out[name] = vector[offset:offset + size].reshape(like[name].shape).to(like[name].dtype)
        offset += size
    return out


def get_state_directions(states: Sequence[Mapping[str, torch.Tensor]], n_states: int | None = 10,
                         start_from: int = 0, reference_id: int = -1, *,
                         model: nn.Module | None = None) -> TrajectoryPCA:
    """The two principal directions of a training trajectory, as in Li et al. 2018.

    ``states``: the parameters saved during training, e.g. a list of ``model.state_dict()``
    copies (one per step or epoch). ``reference_id`` picks the reference state (default: the
    last); the rows of the PCA are ``state_i - reference`` for ``n_states`` states spread evenly
    from index ``start_from`` to the end (all of them if ``n_states`` is None or larger). As in
    Li et al., the rows are centred for the PCA, and the coordinates are the projections of
    ``state_i - reference`` (so the reference lands at (0, 0)).

    Deterministic: a full SVD in float64 on the CPU, and each direction's sign fixed so that the
    first chosen state has a negative coordinate (the path runs towards +x and +y). Buffers and
    non-float entries are skipped (give ``model=`` to use exactly its parameter names);
    parameters that never changed (frozen layers) get zero directions.

    Returns a ``TrajectoryPCA``; its ``directions`` go straight into ``get_loss_grid``. It also
    unpacks as ``directions, state_ids, coordinates`` (coordinates as 2 x N).
    """
    states = list(states)
    if len(states) < 3:
        raise ValueError(f"need at least 3 saved states for a plane, got {len(states)}; "
                         "save the state after every step (or epoch) of training")
    n = len(states)
    ref = _index(reference_id, n, "reference_id")
    ids = _chosen_ids(n, n_states, _index(start_from, n, "start_from"))
    names = _parameter_names(states, model)
    reference = _flatten(states[ref], names)
    rows = torch.stack([_flatten(states[i], names) - reference for i in ids])     # (len(ids), P)
    components, coordinates, ratio = _principal_plane(rows)
    dtype = next((states[ref][name].dtype for name in names), torch.float32)
    d1, d2 = (_unflatten(components[k], states[ref], names) for k in range(2))
    return TrajectoryPCA(directions=(d1, d2), coordinates=coordinates.to(dtype), state_ids=ids,
                         explained_variance=(ratio[0], ratio[1]), reference_id=ref,
                         reference={name: states[ref][name].detach().cpu().clone() for name in names})


def get_random_direction(model: nn.Module | Mapping[str, torch.Tensor], *, one_d: str = "zero",
                         generator: torch.Generator | None = None) -> Direction:
    """A random direction, filter-normalised as in Li et al. 2018.

    For every parameter with 2 or more dimensions, a Gaussian tensor whose every filter (slice
    along dimension 0: one output neuron of a Linear, one output channel of a Conv) is rescaled
    to the norm of the same filter of the parameter. This makes directions comparable between
    layers and networks of different scales.

    ``one_d`` chooses what happens to 1-D parameters (biases, BatchNorm/LayerNorm weights):
    ``"zero"`` (default, Li et al.'s choice in their figures) keeps them fixed;
    ``"weights"`` uses the parameter itself (Li et al.'s code without ``--ignore biasbn``);
    ``"random"`` a Gaussian vector rescaled to the parameter's norm.

    ``model``: the model (its ``named_parameters()``) or a state dict (buffers and non-float
    entries skipped). ``generator`` makes it reproducible.
    """
    if one_d not in ONE_D_CHOICES:
        raise ValueError(f"one_d must be one of {ONE_D_CHOICES}, got {one_d!r}")
    if isinstance(model, nn.Module):
        params = {n: p.detach() for n, p in model.named_parameters()}
    else:
        params = {n: t.detach() for n, t in model.items() if _is_direction_entry(n, t)}
    direction = {}
    for name, p in params.items():
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
        if p.dim() >= 2:
            w_norm = p.reshape(p.shape[0], -1).norm(dim=1)
            d_norm = d.reshape(d.shape[0], -1).norm(dim=1)
            d = d * (w_norm / d_norm.clamp_min(1e-12)).view(-1, *([1] * (p.dim() - 1)))
        elif one_d == "zero":
            d = torch.zeros_like(p)
        elif one_d == "weights":
            d = p.clone()
        else:
            d = d * (p.norm() / d.norm().clamp_min(1e-12))
        direction[name] = d
    return direction
