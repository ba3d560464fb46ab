"""Layers that evaluate G perturbed copies of a trained layer in one forward pass.

Copy ``g`` of a layer has the weight ``W + sum_k c[g, k] * D_k`` (and the same for the
bias), where ``D_k`` are directions in parameter space and ``c`` is a ``(G, K)`` tensor of
coefficients: for a loss landscape, K = 2 and row g holds the grid point ``(alpha, beta)``.

Inputs and outputs carry the copies side by side along the channel / feature dimension:
``(B, G*C, H, W)`` for convolutions and ``(B, G*F)`` for linear layers, copy 0 first. A layer
whose input is the same for every copy (the first layer of a network) takes the plain input
``(B, C, H, W)`` / ``(B, F)`` instead and does not copy it. Weights and activations of the
result grow linearly in G; nothing is quadratic (no block-diagonal matrices).

``convert_net`` applies this to a whole ``nn.Sequential`` of Linear / Conv2d layers and
parameter-free layers that act per channel (activations, pooling, dropout, Flatten).

The loss-landscape code (plot_loss.py) measured this "wide network" against ``torch.func.vmap``
and against a per-point loop; see plot_loss's docstring for which one it uses where. This
module is kept correct and tested either way (tests/test_convert_net.py): it is the easiest
way to see what "evaluating many copies of a network at once" means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Direction = Mapping[str, torch.Tensor]  # "weight" / "bias" -> tensor of that parameter's shape

__all__ = ["WideLinear", "convert_net", "get_conv", "get_lin", "perturbed"]


def _coefficients(coefficients, n_directions: int) -> torch.Tensor:
    c = torch.as_tensor(coefficients)
    if c.dim() == 1:
        c = c[:, None]
    if c.dim() != 2 or c.shape[1] != n_directions:
        raise ValueError(
            f"coefficients must have shape (G, {n_directions}) (one row per copy, one column per "
            f"direction), got {tuple(torch.as_tensor(coefficients).shape)}")
    return c


def perturbed(param: torch.Tensor | None, name: str, directions: Sequence[Direction],
              coefficients) -> torch.Tensor | None:
    """``(G, *param.shape)``: ``param + sum_k c[g, k] * directions[k][name]`` for every copy g.

    A direction without ``name`` (or with ``None`` there) leaves that parameter unchanged.
    """
    if param is None:
        return None
    c = _coefficients(coefficients, len(directions)).to(device=param.device, dtype=param.dtype)
    out = param.detach().expand(c.shape[0], *param.shape).clone()
    for k, direction in enumerate(directions):
        d = direction.get(name) if direction is not None else None
        if d is None:
            continue
        if d.shape != param.shape:
            raise ValueError(f"direction {k} for {name!r} has shape {tuple(d.shape)}, "
                             f"the layer's {name} has {tuple(param.shape)}")
        d = d.to(device=param.device, dtype=param.dtype)
        out += c[:, k].view(-1, *([1] * param.dim())) * d
    return out


class WideLinear(nn.Module):
    """G copies of a Linear layer. Input ``(B, F_in)`` (shared) or ``(B, G*F_in)``; output ``(B, G*F_out)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.copies, self.out_features, self.in_features = weight.shape
        self.weight = nn.Parameter(weight, requires_grad=False)            # (G, F_out, F_in)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)  # (G, F_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, B = self.copies, x.shape[0]
        if x.shape[-1] == self.in_features:
            # Shared input: one matmul against all copies' weights stacked, no copy of x.
            out = F.linear(x, self.weight.reshape(G * self.out_features, self.in_features),
                           None if self.bias is None else self.bias.reshape(-1))
            return out
        if x.shape[-1] != G * self.in_features:
            raise ValueError(f"WideLinear of {G} copies expects {self.in_features} or "
                             f"{G * self.in_features} input features, got {x.shape[-1]}")
        xg = x.reshape(B, G, self.in_features).transpose(0, 1)            # (G, B, F_in)
        if self.bias is None:
            out = torch.bmm(xg, self.weight.transpose(1, 2))
        else:
            out = torch.baddbmm(self.bias[:, None, :], xg, self.weight.transpose(1, 2))
        return out.transpose(0, 1).reshape(B, G * self.out_features)

    def extra_repr(self) -> str:
        return (f"copies={self.copies}, in_features={self.in_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


def get_lin(layer: nn.Linear, directions: Sequence[Direction], coefficients) -> WideLinear:
    """G perturbed copies of ``layer`` in one module (see the module docstring).

    ``directions``: K mappings ``{"weight": D, "bias": d}``; ``coefficients``: ``(G, K)``.
    """
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"get_lin converts nn.Linear, got {type(layer).__name__}")
    return WideLinear(perturbed(layer.weight, "weight", directions, coefficients),
                      perturbed(layer.bias, "bias", directions, coefficients))


class _RepeatChannels(nn.Module):
    """Copies a shared input G times along channels (for grouped convolutions on a shared input)."""

    def __init__(self, copies: int):
        super().__init__()
        self.copies = copies

    def forward(self, x):
        return x.repeat(1, self.copies, *([1] * (x.dim() - 2)))


def get_conv(layer: nn.Conv2d, directions: Sequence[Direction], coefficients,
             shared_input: bool = False) -> nn.Module:
    """G perturbed copies of ``layer`` as one ``nn.Conv2d`` with ``G * out_channels`` outputs.

    Keeps stride, padding (and its mode), dilation, groups and a missing bias. With
    ``shared_input=False`` the input is ``(B, G*C_in, H, W)`` (copy g's channels in block g) and
    the copies are separate groups. With ``shared_input=True`` the input is the plain
    ``(B, C_in, H, W)``: for ``groups == 1`` all copies read it without copying it; a grouped
    layer gets it repeated G times first (memory still linear in G).
    """
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"get_conv converts nn.Conv2d, got {type(layer).__name__}")
    weight = perturbed(layer.weight, "weight", directions, coefficients)     # (G, C_out, C_in/g, kh, kw)
    bias = perturbed(layer.bias, "bias", directions, coefficients)
    G = weight.shape[0]
    share = shared_input and layer.groups == 1
    wide = nn.Conv2d(
        layer.in_channels if share else G * layer.in_channels, G * layer.out_channels,
        layer.kernel_size, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
        groups=layer.groups if share else G * layer.groups, bias=bias is not None,
        padding_mode=layer.padding_mode, device=weight.device, dtype=weight.dtype)
    wide.requires_grad_(False)
    with torch.no_grad():
        wide.weight.copy_(weight.reshape(G * layer.out_channels, *weight.shape[2:]))
        if bias is not None:
            wide.bias.copy_(bias.reshape(-1))
    if shared_input and not share:
        return nn.Sequential(_RepeatChannels(G), wide)
    return wide


# Parameter-free layers that act on each channel (or each feature) separately, so they work
# unchanged on copies laid side by side along the channel dimension.
_PER_CHANNEL = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus,
                nn.Identity, nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool1d,
                nn.AvgPool1d)


def convert_net(model: nn.Sequential, directions: Sequence[Mapping[str, torch.Tensor]],
                coefficients) -> nn.Module:
    """A module that evaluates G perturbed copies of ``model`` at once.

    ``directions``: K mappings from ``model``'s parameter names (``"0.weight"``, ...) to tensors;
    ``coefficients``: ``(G, K)``. The result maps a batch ``(B, ...)`` to ``(B, G, outputs)``.
    Supports ``nn.Sequential`` of Linear, Conv2d, Flatten and per-channel parameter-free layers;
    raises ValueError naming the first layer it cannot convert. Run it in eval mode.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"convert_net converts an nn.Sequential, got {type(model).__name__}; "
                         "plot_loss.get_loss_grid handles any model")
    c = _coefficients(coefficients, len(directions))
    layers: list[nn.Module] = []
    shared = True  # until the first parametrised layer, every copy sees the same input
    for name, layer in model.named_children():
        sub = [{k[len(name) + 1:]: v for k, v in d.items() if k.startswith(name + ".")}
               for d in directions]
        if isinstance(layer, nn.Linear):
            layers.append(get_lin(layer, sub, c))
            shared = False
        elif isinstance(layer, nn.Conv2d):
            layers.append(get_conv(layer, sub, c, shared_input=shared))
            shared = False
        elif isinstance(layer, nn.Flatten) and layer.start_dim == 1 and layer.end_dim == -1:
            layers.append(layer)
        elif isinstance(layer, _PER_CHANNEL):
            layers.append(layer)
        else:
            raise ValueError(f"convert_net cannot convert layer {name!r} ({type(layer).__name__}); "
                             "use plot_loss.get_loss_grid, which handles any model")
    if shared:
        raise ValueError("the model has no Linear or Conv2d layer to convert")
    G = c.shape[0]

    class _Wide(nn.Sequential):
        def forward(self, x):
            out = super().forward(x)
            return out.reshape(out.shape[0], G, -1)

    return _Wide(*layers)
