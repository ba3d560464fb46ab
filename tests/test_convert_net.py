"""convert_net: G perturbed copies of a layer in one call equal G separate copies of the layer."""

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import convert_net


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread: faster and steadier than two on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _directions(layer: nn.Module, k: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [{n: torch.randn(p.shape, generator=g) for n, p in layer.named_parameters()} for _ in range(k)]


def _copies(layer: nn.Module, directions, coefficients):
    """The slow truth: one deepcopy of the layer per row of coefficients, weights loaded."""
    out = []
    for row in coefficients:
        c = copy.deepcopy(layer)
        state = {n: p.detach() + sum(float(row[k]) * d[n] for k, d in enumerate(directions))
                 for n, p in layer.named_parameters()}
        c.load_state_dict(state, strict=False)
        out.append(c)
    return out


COEFS = torch.tensor([[0.0, 0.0], [1.0, -0.5], [-0.3, 0.7]])


@pytest.mark.parametrize("bias", [True, False])
def test_lin_equals_separate_copies_for_shared_and_per_copy_inputs(bias):
    torch.manual_seed(0)
    layer = nn.Linear(7, 5, bias=bias)
    dirs = _directions(layer)
    wide = convert_net.get_lin(layer, dirs, COEFS)
    copies = _copies(layer, dirs, COEFS)
    x = torch.randn(4, 7)
    expected = torch.cat([c(x) for c in copies], dim=1)                    # (B, G*F_out)
    assert_close(wide(x), expected)                                          # shared input
    xs = [torch.randn(4, 7) for _ in copies]
    assert_close(wide(torch.cat(xs, dim=1)), torch.cat([c(xi) for c, xi in zip(copies, xs)], dim=1))
    assert (wide.bias is None) == (not bias)


CONV_CASES = [
    dict(in_channels=2, out_channels=4, kernel_size=3),
    dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, dilation=2, groups=2, bias=False),
    dict(in_channels=3, out_channels=3, kernel_size=(3, 2), padding=(2, 1), padding_mode="reflect", groups=3),
    dict(in_channels=2, out_channels=4, kernel_size=3, padding="same", padding_mode="circular"),
]


@pytest.mark.parametrize("kwargs", CONV_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_conv_equals_separate_copies_and_keeps_the_layer_settings(kwargs):
    torch.manual_seed(1)
    layer = nn.Conv2d(**kwargs)
    dirs = _directions(layer, seed=2)
    copies = _copies(layer, dirs, COEFS)
    x = torch.randn(2, layer.in_channels, 9, 8)
    expected = torch.cat([c(x) for c in copies], dim=1)
    shared = convert_net.get_conv(layer, dirs, COEFS, shared_input=True)
    assert_close(shared(x), expected)
    xs = [torch.randn_like(x) for _ in copies]
    per_copy = convert_net.get_conv(layer, dirs, COEFS)
    assert_close(per_copy(torch.cat(xs, dim=1)), torch.cat([c(xi) for c, xi in zip(copies, xs)], dim=1))
    assert (per_copy.stride, per_copy.padding, per_copy.dilation, per_copy.padding_mode) == (
        layer.stride, layer.padding, layer.dilation, layer.padding_mode)
    assert per_copy.groups == len(COEFS) * layer.groups
    assert (per_copy.bias is None) == (layer.bias is None)


def test_memory_is_linear_in_the_number_of_copies():
    layer, conv = nn.Linear(30, 20), nn.Conv2d(3, 8, 3, groups=1)
    for G in (1, 4, 16):
        coefs = torch.randn(G, 2)
        wide_lin = convert_net.get_lin(layer, _directions(layer), coefs)
        wide_conv = convert_net.get_conv(conv, _directions(conv), coefs)
        assert sum(p.numel() for p in wide_lin.parameters()) == G * sum(p.numel() for p in layer.parameters())
        assert sum(p.numel() for p in wide_conv.parameters()) == G * sum(p.numel() for p in conv.parameters())


def test_missing_direction_entries_leave_that_parameter_alone():
    layer = nn.Linear(3, 2)
    only_weight = [{"weight": torch.ones(2, 3)}]
    wide = convert_net.get_lin(layer, only_weight, torch.tensor([[2.0]]))
    assert_close(wide.bias[0], layer.bias.detach())
    assert_close(wide.weight[0], layer.weight.detach() + 2)


def test_whole_sequential_network_equals_separate_copies():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3),
                        nn.Tanh(), nn.Flatten(), nn.Linear(4 * 2 * 2, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    dirs = _directions(net)
    copies = _copies(net, dirs, COEFS)
    x = torch.randn(6, 1, 8, 8)
    wide = convert_net.convert_net(net, dirs, COEFS)
    # float rounding of G copies in one grouped call: the same 1e-5 the loss grids are held to
    assert_close(wide(x), torch.stack([c(x) for c in copies], dim=1), rtol=1e-5, atol=1e-5)  # (B, G, out)


def test_unsupported_layers_and_bad_shapes_are_named():
    with pytest.raises(ValueError, match="'1'.*BatchNorm1d"):
        convert_net.convert_net(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), [{}], [[0.0]])
    with pytest.raises(ValueError, match="nn.Sequential"):
        convert_net.convert_net(nn.Linear(3, 3), [{}], [[0.0]])
    with pytest.raises(ValueError, match="direction 0 for 'weight'"):
        convert_net.get_lin(nn.Linear(3, 2), [{"weight": torch.ones(3, 2)}], [[1.0]])
    with pytest.raises(ValueError, match=r"shape \(G, 2\)"):
        convert_net.get_lin(nn.Linear(3, 2), _directions(nn.Linear(3, 2)), torch.ones(4, 3))
    with pytest.raises(TypeError, match="nn.Conv2d"):
        convert_net.get_conv(nn.Linear(3, 2), [{}], [[0.0]])
