"""What ``torch.fx`` traces of a model make possible: the first-layer split and faster copies.

* ``first_layer_split``: the model cut after its first layer, which is linear in its weights;
* ``speed_up``: plain 2x2 max-pooling as four strided maxima (bitwise the same, 3-6x faster
  than ``max_pool2d`` on the course's CPU build) and BatchNorm in eval mode folded into the
  convolution before it.

Each rewrites a trace of the model and is used only where the rewritten trace reproduces the
model's output on a sample (a trace freezes Python-level decisions, and hooks are not traced);
otherwise the model itself is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

FIRST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class FirstLayerSplit:
    """A model cut after its first parametrised layer: ``model(x) == rest(x, layer(prefix(x)))``."""

    prefix: nn.Module      # x -> input of the first layer (no parameters)
    layer: nn.Module       # the first layer (a Linear or a Conv: linear in its weights)
    layer_name: str
    rest: fx.GraphModule   # (x, z) -> output, z = the first layer's output

    def apply(self, u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The layer on ``u`` with the given weight and bias (its own settings otherwise)."""
        if isinstance(self.layer, nn.Linear):
            return F.linear(u, weight, bias)
        return self.layer._conv_forward(u, weight, bias)


def has_hooks(net: nn.Module) -> bool:
    """Whether any module hook (or a global one) is registered: a trace would skip it."""
    hook_dicts = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
    if any(getattr(m, h, None) for m in net.modules() for h in hook_dicts):
        return True
    from torch.nn.modules import module as module_mod
    return bool(getattr(module_mod, "_global_forward_hooks", None)
                or getattr(module_mod, "_global_forward_pre_hooks", None))


def _trace(net: nn.Module) -> fx.GraphModule | None:
    """A trace of ``net`` with one input, or None (hooks, control flow on values, ...)."""
    if has_hooks(net):
        return None
    try:
        gm = fx.symbolic_trace(net)
    except Exception:  # any model fx cannot trace falls back to the model itself
        return None
    if sum(1 for n in gm.graph.nodes if n.op == "placeholder") != 1:
        return None
    return gm


def _reproduces(model, net: nn.Module, x: torch.Tensor, exact: bool) -> bool:
    """Whether ``model(x)`` gives ``net(x)`` (bitwise if ``exact``); any failure says no."""
    try:
        with torch.no_grad():
            expected, got = net(x), model(x)
    except Exception:
        return False
    if not (isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor) and got.shape == expected.shape):
        return False
    return torch.equal(got, expected) if exact else torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


# ---- the first-layer split -------------------------------------------------------------------

def _uses_params(gm: fx.GraphModule, node: fx.Node, param_names: set[str]) -> bool:
    if node.op == "call_module":
        return any(True for _ in gm.get_submodule(node.target).parameters())
    if node.op == "get_attr":
        return any(node.target == p or p.startswith(node.target + ".") for p in param_names)
    return False


def _first_layer_node(gm: fx.GraphModule, net: nn.Module) -> fx.Node | None:
    """The first node that uses parameters, if it is a Linear / Conv called once on one input,
    with weights of its own (not shared, not parametrised)."""
    param_names = {n for n, _ in net.named_parameters()}
    first = next((n for n in gm.graph.nodes if _uses_params(gm, n, param_names)), None)
    if first is None or first.op != "call_module":
        return None
    layer = gm.get_submodule(first.target)
    if not isinstance(layer, FIRST_LAYERS) or parametrize.is_parametrized(layer):
        return None
    if len(first.args) != 1 or first.kwargs or not isinstance(first.args[0], fx.Node):
        return None
    calls = [n for n in gm.graph.nodes if n.op == "call_module" and gm.get_submodule(n.target) is layer]
    own = {id(p) for p in layer.parameters()}
    shared = sum(1 for _, p in net.named_parameters(remove_duplicate=False) if id(p) in own) != len(own)
    return None if len(calls) != 1 or shared else first


def _parameter_free_ancestors(gm: fx.GraphModule, node: fx.Node, net: nn.Module) -> set[fx.Node] | None:
    """The nodes ``node`` is computed from, or None if any of them uses a parameter."""
    param_names = {n for n, _ in net.named_parameters()}
    ancestors, todo = set(), [node]
    while todo:
        current = todo.pop()
        if current in ancestors:
            continue
        if _uses_params(gm, current, param_names):
            return None
        ancestors.add(current)
        todo.extend(current.all_input_nodes)
    return ancestors


def _subgraph(gm: fx.GraphModule, keep, output: fx.Node | None = None,
              replace: fx.Node | None = None) -> fx.GraphModule:
    """A GraphModule of the nodes ``keep`` of ``gm``'s graph (in order); ``replace`` becomes a new
    input; ``output`` (if given) becomes the output."""
    graph, env = fx.Graph(), {}
    for node in gm.graph.nodes:
        if node is replace:
            env[node] = graph.placeholder("_first_layer_output")
        elif keep(node):
            env[node] = graph.node_copy(node, lambda a: env[a])
    if output is not None:
        graph.output(env[output])
    module = fx.GraphModule(gm, graph)
    module.graph.eliminate_dead_code()  # drops the prefix where only the layer used it
    module.recompile()
    return module


def first_layer_split(net: nn.Module, x_sample: torch.Tensor, fast: bool = False) -> FirstLayerSplit | None:
    """Split ``net`` at its first parametrised layer if that is provably linear in its weights
    on a parameter-free function of the input; None where that cannot be shown (the split must
    also reproduce ``net`` on ``x_sample``). ``fast``: the rest sped up by ``speed_up``."""
    gm = _trace(net)
    first = None if gm is None else _first_layer_node(gm, net)
    ancestors = None if first is None else _parameter_free_ancestors(gm, first.args[0], net)
    if ancestors is None:
        return None
    prefix = _subgraph(gm, lambda n: n in ancestors, output=first.args[0])
    rest = _subgraph(gm, lambda n: True, replace=first)
    if fast:
        speed_up(rest)
    split = FirstLayerSplit(prefix, gm.get_submodule(first.target), first.target, rest)

    def whole(x):
        return split.rest(x, split.layer(split.prefix(x)))

    return split if _reproduces(whole, net, x_sample, exact=False) else None


# ---- fast pooling ----------------------------------------------------------------------------

def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)``, bitwise: the maximum of four strided views. On the course's CPU
    build max_pool2d was 3-6x slower than this and took ~40 % of the GarmentClassifier's time."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                         torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _plain_2x2(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False) -> bool:
    return (_pair(kernel_size) == (2, 2) and _pair(stride if stride is not None else kernel_size) == (2, 2)
            and _pair(padding) == (0, 0) and _pair(dilation) == (1, 1) and not ceil_mode and not return_indices)


def is_plain_2x2_pool(module) -> bool:
    """Whether ``module`` is an ``nn.MaxPool2d`` that ``max_pool_2x2`` computes exactly."""
    return type(module) is nn.MaxPool2d and _plain_2x2(
        module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode, module.return_indices)


def _is_plain_2x2_call(node: fx.Node) -> bool:
    """A traced ``F.max_pool2d(x, 2)`` (a hand-written forward) that ``max_pool_2x2`` computes."""
    if node.op != "call_function" or node.target is not F.max_pool2d or not node.args:
        return False
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    settings = {**dict(zip(names, node.args[1:])), **node.kwargs}
    return set(settings) <= set(names) and "kernel_size" in settings and _plain_2x2(**settings)


def fast_pooling(gm: fx.GraphModule) -> bool:
    """Compute every plain 2x2 max-pooling of ``gm``, module or functional, by ``max_pool_2x2``
    (in place; the same values, faster on a CPU). Whether anything changed."""
    changed = False
    for node in list(gm.graph.nodes):
        pool_module = node.op == "call_module" and is_plain_2x2_pool(gm.get_submodule(node.target))
        if pool_module or _is_plain_2x2_call(node):
            node.op, node.target = "call_function", max_pool_2x2
            node.args, node.kwargs = node.args[:1], {}
            changed = True
    return changed


# ---- BatchNorm folded into the convolution before it -----------------------------------------

CONVS, NORMS = (nn.Conv1d, nn.Conv2d, nn.Conv3d), (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def conv_bn(x: torch.Tensor, conv: nn.Module, bn: nn.Module) -> torch.Tensor:
    """``bn(conv(x))`` for a BatchNorm in eval mode, as one convolution: the BatchNorm scales each
    channel by ``weight / sqrt(running_var + eps)`` and shifts it, which the convolution's weight
    and bias can do (one pass over the activations instead of two; measured 5-8 % of a residual
    CNN's time). The parameters are read at call time, so ``functional_call`` and ``vmap`` can
    swap them in."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale if conv.bias is None else (conv.bias - bn.running_mean) * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    weight = conv.weight * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    return conv._conv_forward(x, weight, shift)


def _foldable(gm: fx.GraphModule, node: fx.Node) -> bool:
    """A BatchNorm in eval mode with running statistics, applied to a convolution's output that
    nothing else uses."""
    if node.op != "call_module" or type(gm.get_submodule(node.target)) not in NORMS:
        return False
    bn, conv_node = gm.get_submodule(node.target), node.args[0] if len(node.args) == 1 else None
    if bn.training or bn.running_var is None or node.kwargs or not isinstance(conv_node, fx.Node):
        return False
    if conv_node.op != "call_module" or len(conv_node.users) != 1 or len(conv_node.args) != 1 or conv_node.kwargs:
        return False
    conv = gm.get_submodule(conv_node.target)
    return type(conv) in CONVS and not parametrize.is_parametrized(conv)


def fold_batch_norms(gm: fx.GraphModule) -> bool:
    """Replace every ``bn(conv(x))`` of ``gm`` that ``_foldable`` allows by ``conv_bn`` (in place).
    Whether anything changed."""
    changed = False
    for node in list(gm.graph.nodes):
        if not _foldable(gm, node):
            continue
        conv_node = node.args[0]
        with gm.graph.inserting_before(node):
            conv, bn = gm.graph.get_attr(conv_node.target), gm.graph.get_attr(node.target)
            fused = gm.graph.call_function(conv_bn, (conv_node.args[0], conv, bn))
        node.replace_all_uses_with(fused)
        gm.graph.erase_node(node)
        gm.graph.erase_node(conv_node)
        changed = True
    return changed


def speed_up(gm: fx.GraphModule) -> bool:
    """Fast pooling and folded BatchNorms in ``gm`` (in place); whether anything changed."""
    pooled, folded = fast_pooling(gm), fold_batch_norms(gm)
    if pooled or folded:
        gm.recompile()
    return pooled or folded


def fast_trace(net: nn.Module, sample: torch.Tensor) -> fx.GraphModule | None:
    """A traced copy of ``net`` sped up by ``speed_up``, or None where nothing applies, the model
    cannot be traced, or the copy does not reproduce ``net`` on ``sample``."""
    gm = _trace(net)
    if gm is None or not speed_up(gm):
        return None
    return gm if _reproduces(gm, net, sample, exact=False) else None
