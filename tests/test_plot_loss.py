"""plot_loss: trajectory PCA, random directions, the loss grid against a plain per-point loop, figures."""

import copy
from types import SimpleNamespace

import numpy as np
import plotly.io as pio
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.testing import assert_close

import plot_loss
from loss_landscape import choice, tracing
from loss_landscape import grid as grid_module
from plot_loss import get_loss_grid, get_random_direction, get_state_directions

TOL = dict(rtol=1e-6, atol=1e-6)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread: faster and steadier than two on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- models ----------------------------------------------------------------------------------

def garment_classifier() -> nn.Module:
    """The notebooks' LeNet-style CNN for 28x28 images."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 10))


class HandWritten(nn.Module):
    """A hand-written forward: explicit padding, BatchNorm, a skip connection, functional calls."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.head = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        h = F.relu(self.bn(self.conv(F.pad(x, (1, 1, 1, 1)))))
        h = h + torch.tanh(self.conv2(h))
        return self.head(h.flatten(1))


class Untraceable(HandWritten):
    """Python control flow on values: torch.fx cannot trace it, so the grid must fall back."""

    def forward(self, x):
        if x.abs().sum() > 0:
            x = x * 1.0
        return super().forward(x)


class BatchNormFirst(nn.Module):
    """The first parametrised step is BatchNorm, not a Linear: no first-layer shortcut."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(784)
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(self.bn(x.flatten(1)))


class TiedInput(nn.Module):
    """The first Linear's weight is used again later (the split must move both uses)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 784, bias=False)

    def forward(self, x):
        h = torch.tanh(self.fc(x.flatten(1)))
        return F.linear(h, self.fc.weight)[:, :10]


class ScaledInput(nn.Module):
    """A parameter acts on the input before the first Linear: that layer's input moves with theta."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.5))
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1) * self.scale)


class SmallCNN(nn.Module):
    """A CNN written by hand: padding, BatchNorm, functional pooling, a Linear without bias."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 7 * 7, 10, bias=False)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


class HandMLP(nn.Module):
    """The MLP [784, 32, 32, 10] with its own forward instead of an nn.Sequential."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 32), nn.Linear(32, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Residual(nn.Module):
    """A strided stem and one residual block (conv-BN-ReLU-conv-BN plus the skip), averaged."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        h = self.stem(x)
        h = F.relu(h + self.block(h))
        return self.head(h.mean((2, 3)))


class GRUNet(nn.Module):
    """Rows of the image as a sequence: vmap has no batching rule for the GRU, so "auto" must not
    end up there."""

    def __init__(self):
        super().__init__()
        self.gru, self.fc = nn.GRU(28, 8, batch_first=True), nn.Linear(8, 10)

    def forward(self, x):
        out, _ = self.gru(x.view(x.shape[0], 28, 28))
        return self.fc(out[:, -1])


def _data(n=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _prepared(model: nn.Module, seed=0) -> nn.Module:
    torch.manual_seed(seed)
    net = model
    X, Y = _data(64, seed=9)
    net.train()
    with torch.no_grad():           # BatchNorm running statistics away from their start values
        for _ in range(3):
            net(X)
    return net.eval()


def _directions(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (get_random_direction(net, generator=g, one_d="random"),
            get_random_direction(net, generator=g, one_d="weights"))


def per_point_loop(net, X, Y, loss_fn, d1, d2, xs, ys, batch_size=64):
    """The slow truth: load the perturbed weights into a copy, one full eval pass per point."""
    model = copy.deepcopy(net).eval()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=batch_size)
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    z = torch.zeros(len(ys), len(xs), dtype=torch.float64)
    with torch.no_grad():
        for i, b in enumerate(ys.tolist()):
            for j, a in enumerate(xs.tolist()):
                for n, p in model.named_parameters():
                    p.copy_(base[n] + a * d1.get(n, torch.zeros_like(p)) + b * d2.get(n, torch.zeros_like(p)))
                total = 0.0
                for x, y in loader:
                    total += float(loss_fn(model(x), y)) * len(y)   # per sample: the last batch is short
                z[i, j] = total / len(X)
    return z


RES, SCALE = (4, 3), ((-1.0, 0.5), (-0.3, 0.6))   # not square, not symmetric: transposes would show

ALL = ["auto", "first_layer", "vmap", "loop"]
NO_FIRST_LAYER = ["auto", "vmap", "loop"]
MODELS = {                       # name: (model, the strategies that apply to it)
    "mlp": (mlp, ALL),
    "garment": (garment_classifier, ALL),
    "handwritten": (HandWritten, ALL),
    "untraceable": (Untraceable, NO_FIRST_LAYER),
    "bn_first": (BatchNormFirst, NO_FIRST_LAYER),
    "scaled_input": (ScaledInput, NO_FIRST_LAYER),
    "tied": (TiedInput, ALL),
    # shapes beyond the course's own
    "small_cnn": (SmallCNN, ALL),
    "hand_mlp": (HandMLP, ALL),
    "residual": (Residual, ALL),
    "gru": (GRUNet, ["auto", "loop"]),          # vmap has no batching rule for a GRU
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_strategy_equals_the_per_point_loop(name):
    make, strategies = MODELS[name]
    net = _prepared(make())
    X, Y = _data()
    loss_fn = nn.CrossEntropyLoss()
    d1, d2 = _directions(net)
    expected = per_point_loop(net, X, Y, loss_fn, d1, d2, torch.linspace(-1.0, 0.5, 4, dtype=torch.float64),
                              torch.linspace(-0.3, 0.6, 3, dtype=torch.float64))
    for strategy in strategies:
        grid = get_loss_grid(net, (X, Y), loss_fn, (d1, d2), RES, SCALE, strategy=strategy,
                             points_per_pass=None if strategy == "auto" else 5, show_progress=False)
        assert grid.z.shape == (3, 4)
        assert grid.strategy in strategies[1:] if strategy == "auto" else grid.strategy == strategy
        assert_close(grid.z.double(), expected, **TOL, msg=f"strategy {strategy}")
        assert_close(grid.x, torch.linspace(-1.0, 0.5, 4))
        assert_close(grid.y, torch.linspace(-0.3, 0.6, 3))


def test_loss_is_averaged_per_sample_and_any_data_form_gives_the_same_grid():
    net = _prepared(mlp())
    X, Y = _data(130)                     # batches of 64, 64 and 2: a mean of batch means differs
    loss_fn = nn.CrossEntropyLoss()
    d1, d2 = _directions(net)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=64)
    grids = [get_loss_grid(net, data, loss_fn, (d1, d2), 3, 0.5, show_progress=False).z
             for data in ((X, Y), loader, torch.utils.data.TensorDataset(X, Y))]
    assert_close(grids[1], grids[0], **TOL)
    assert_close(grids[2], grids[0], **TOL)
    # the shortcut for plain cross-entropy (all points of a pass at once) against calling the loss
    generic = get_loss_grid(net, (X, Y), lambda out, y: F.cross_entropy(out, y), (d1, d2), 3, 0.5,
                            show_progress=False).z
    assert_close(generic, grids[0], **TOL)
    smooth = nn.CrossEntropyLoss(label_smoothing=0.1)
    assert_close(get_loss_grid(net, (X, Y), smooth, (d1, d2), 3, 0.5, show_progress=False).z.double(),
                 per_point_loop(net, X, Y, smooth, d1, d2, torch.linspace(-0.5, 0.5, 3), torch.linspace(-0.5, 0.5, 3)),
                 **TOL)
    with torch.no_grad():
        centre = float(loss_fn(net(X), Y))          # the middle of a 3x3 grid is theta itself
    assert grids[0][1, 1].item() == pytest.approx(centre, rel=1e-5)


def test_the_model_is_left_exactly_as_it_was():
    net = HandWritten()
    _prepared(net)
    net.train()
    net.bn.eval()                                    # a mixed train/eval state must come back too
    net.conv2.weight.requires_grad_(False)
    net(torch.randn(2, 1, 28, 28)).sum().backward()  # gradients present before the grid
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in net.named_parameters()}
    ptrs = {n: p.data_ptr() for n, p in net.named_parameters()}
    flags = {n: m.training for n, m in net.named_modules()}
    req = {n: p.requires_grad for n, p in net.named_parameters()}
    X, Y = _data(40)
    for strategy in ("auto", "first_layer", "vmap", "loop"):
        get_loss_grid(net, (X, Y), nn.CrossEntropyLoss(), _directions(net), 2, 1.0, strategy=strategy,
                      show_progress=False)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert {n: m.training for n, m in net.named_modules()} == flags
    assert {n: p.requires_grad for n, p in net.named_parameters()} == req
    assert {n: p.data_ptr() for n, p in net.named_parameters()} == ptrs
    for n, p in net.named_parameters():
        assert (p.grad is None) == (grads[n] is None) and (p.grad is None or torch.equal(p.grad, grads[n]))


def test_the_first_layer_shortcut_is_refused_where_it_would_not_be_exact():
    X, _ = _data(4)
    assert tracing.first_layer_split(ScaledInput().eval(), X) is None
    assert tracing.first_layer_split(BatchNormFirst().eval(), X) is None
    assert tracing.first_layer_split(Untraceable().eval(), X) is None
    hooked = mlp().eval()
    hooked[1].register_forward_hook(lambda m, i, o: o * 2)
    assert tracing.first_layer_split(hooked, X) is None
    assert tracing.first_layer_split(mlp().eval(), X) is not None
    with pytest.raises(ValueError, match="first_layer"):
        get_loss_grid(ScaledInput(), _data(8), nn.CrossEntropyLoss(), _directions(ScaledInput()), 2,
                      strategy="first_layer", show_progress=False)
    # ...and the hooked model still gets the right grid (the hook doubles the first layer)
    X, Y = _data(30)
    d1, d2 = _directions(hooked)
    grid = get_loss_grid(hooked, (X, Y), nn.CrossEntropyLoss(), (d1, d2), 2, 0.5, show_progress=False)
    assert_close(grid.z.double(), per_point_loop(hooked, X, Y, nn.CrossEntropyLoss(), d1, d2,
                                                 grid.x.double(), grid.y.double()), **TOL)


def test_bad_inputs_get_clear_errors():
    net = mlp()
    d = _directions(net)
    data = _data(8)
    with pytest.raises(ValueError, match="reduction='mean'"):
        get_loss_grid(net, data, nn.CrossEntropyLoss(reduction="sum"), d, 2, show_progress=False)
    with pytest.raises(ValueError, match="not a parameter"):
        get_loss_grid(net, data, nn.CrossEntropyLoss(), ({"nope": torch.ones(1)}, d[1]), 2, show_progress=False)
    with pytest.raises(ValueError, match="shape"):
        get_loss_grid(net, data, nn.CrossEntropyLoss(), ({"1.bias": torch.ones(3)}, d[1]), 2, show_progress=False)
    with pytest.raises(ValueError, match="strategy"):
        get_loss_grid(net, data, nn.CrossEntropyLoss(), d, 2, strategy="fast", show_progress=False)
    with pytest.raises(TypeError, match="pair"):
        get_loss_grid(net, data, nn.CrossEntropyLoss(), d[0], 2, show_progress=False)


# ---- directions ------------------------------------------------------------------------------

def _flat(direction, names):
    return torch.cat([direction[n].reshape(-1).double() for n in names])


def _trajectory(net: nn.Module, n=12, seed=0):
    """States theta_end + a_i*u + b_i*v (u, v orthonormal, spread over every parameter)."""
    g = torch.Generator().manual_seed(seed)
    names = [n for n, _ in net.named_parameters()]
    size = sum(p.numel() for p in net.parameters())
    q, _ = torch.linalg.qr(torch.randn(size, 2, generator=g, dtype=torch.float64))
    u, v = q[:, 0], q[:, 1]
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    a, b = 3 * (t - 1), 0.5 * torch.sin(3 * t) * (1 - t)      # a dominates; the last state is the end
    end = torch.cat([p.detach().reshape(-1).double() for p in net.parameters()])
    states = []
    for i in range(n):
        flat, state, offset = end + a[i] * u + b[i] * v, {}, 0
        for name, p in net.named_parameters():
            state[name] = flat[offset:offset + p.numel()].reshape(p.shape).float()
            offset += p.numel()
        states.append(state)
    return states, names, u, v, a, b


def test_pca_finds_the_plane_orthonormal_reproducible_with_the_reference_at_the_origin():
    net = mlp()
    states, names, u, v, a, b = _trajectory(net)
    pca = get_state_directions(states, n_states=None)
    assert pca.state_ids == list(range(12)) and pca.reference_id == 11
    d1, d2 = (_flat(d, names) for d in pca.directions)
    assert d1 @ d1 == pytest.approx(1, abs=1e-5) and d2 @ d2 == pytest.approx(1, abs=1e-5)
    assert d1 @ d2 == pytest.approx(0, abs=1e-5)
    for w in (u, v):                                             # the plane is found exactly
        assert float((d1 @ w) ** 2 + (d2 @ w) ** 2) == pytest.approx(1, abs=1e-5)
    assert abs(d1 @ u) == pytest.approx(1, abs=1e-3)            # the dominant direction first
    assert_close(pca.coordinates[-1], torch.zeros(2), atol=1e-5, rtol=0)
    # in-plane distances to the reference are kept, and the coordinates are projections on d1, d2
    assert_close(pca.coordinates.double().norm(dim=1), torch.stack([a, b], 1).norm(dim=1), atol=1e-4, rtol=0)
    ref = _flat(states[-1], names)
    for i in (0, 5):
        step = _flat(states[i], names) - ref
        assert_close(pca.coordinates[i].double(), torch.stack([step @ d1, step @ d2]), atol=1e-4, rtol=0)
    assert pca.coordinates[0, 0] < 0 and pca.coordinates[0, 1] <= 0     # fixed signs
    assert pca.explained_variance[0] > pca.explained_variance[1] > 0
    assert sum(pca.explained_variance) == pytest.approx(1, abs=1e-4)  # the trajectory is a plane
    again = get_state_directions([{k: v.clone() for k, v in s.items()} for s in states], n_states=None)
    for k in range(2):
        for name in names:
            assert torch.equal(again.directions[k][name], pca.directions[k][name])
    assert torch.equal(again.coordinates, pca.coordinates)
    assert_close(pca.project(states), pca.coordinates, atol=1e-5, rtol=0)


def test_pca_chooses_states_and_reference():
    states, *_ = _trajectory(mlp(), n=30)
    pca = get_state_directions(states, n_states=5, start_from=10, reference_id=-1)
    assert pca.state_ids == [10, 15, 20, 24, 29]
    assert pca.coordinates.shape == (5, 2)
    everything = pca.project(states)                         # all 30 states in the plane of 5
    assert everything.shape == (30, 2)
    assert_close(everything[pca.state_ids], pca.coordinates, atol=1e-5, rtol=0)
    fig = plot_loss.plot_contour(plot_loss.LossGrid(torch.zeros(2), torch.zeros(2), torch.ones(2, 2)), pca,
                                 coordinates=everything)
    assert len(fig.data[1].x) == 30 and fig.data[2].x[0] == pytest.approx(float(everything[0, 0]))
    mid = get_state_directions(states, n_states=None, start_from=0, reference_id=15)
    assert_close(mid.coordinates[15], torch.zeros(2), atol=1e-5, rtol=0)
    (x0, x1), (y0, y1) = mid.grid_range(margin=0.1)
    assert x0 < mid.coordinates[:, 0].min() and x1 > mid.coordinates[:, 0].max()
    assert y0 < mid.coordinates[:, 1].min() and y1 > mid.coordinates[:, 1].max()


def test_pca_ignores_buffers_and_frozen_parameters_and_reads_averaged_models():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 10))
    net[0].requires_grad_(False)                                   # frozen: never changes
    swa = AveragedModel(net)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    X, Y = _data(32)
    X = X[:, :, :8, :8]
    states, swa_states = [], []
    for _ in range(6):
        opt.zero_grad()
        F.cross_entropy(net(X), Y).backward()
        opt.step()
        swa.update_parameters(net)
        states.append(copy.deepcopy(net.state_dict()))
        swa_states.append(copy.deepcopy(swa.state_dict()))
    assert not torch.equal(states[0]["1.running_mean"], states[-1]["1.running_mean"])  # buffers moved
    pca = get_state_directions(states, n_states=None)
    names = {n for n, _ in net.named_parameters()}
    for d in pca.directions:
        assert set(d) == names                                    # no running stats, no counters
        assert torch.count_nonzero(d["0.weight"]) == 0 and torch.count_nonzero(d["0.bias"]) == 0
    assert pca.directions[0]["4.weight"].dtype == torch.float32
    swa_pca = get_state_directions(swa_states, n_states=None)
    assert "n_averaged" not in swa_pca.directions[0]
    assert set(swa_pca.directions[0]) == {"module." + n for n in names}
    X, Y = _data(20)
    X = X[:, :, :8, :8]
    net.eval()
    inner = get_loss_grid(net, (X, Y), nn.CrossEntropyLoss(), swa_pca, 2, 0.5, show_progress=False)
    outer = get_loss_grid(swa.module, (X, Y), nn.CrossEntropyLoss(), swa_pca, 2, 0.5, show_progress=False)
    whole = get_loss_grid(swa, (X, Y), nn.CrossEntropyLoss(), swa_pca, 2, 0.5, show_progress=False)
    assert torch.isfinite(inner.z).all() and torch.isfinite(outer.z).all()
    assert_close(whole.z, outer.z, **TOL)
    withmodel = get_state_directions(states, n_states=None, model=net)
    assert set(withmodel.directions[0]) == names


def test_pca_errors_say_what_to_do():
    states, *_ = _trajectory(mlp(), n=5)
    with pytest.raises(ValueError, match="at least 3"):
        get_state_directions(states[:2])
    with pytest.raises(ValueError, match="less than a plane"):
        get_state_directions([states[0]] * 4)
    with pytest.raises(IndexError, match="reference_id"):
        get_state_directions(states, reference_id=5)


def test_random_direction_is_filter_normalised_and_reproducible():
    torch.manual_seed(0)
    net = garment_classifier()
    d = get_random_direction(net, generator=torch.Generator().manual_seed(3))
    same = get_random_direction(net, generator=torch.Generator().manual_seed(3))
    for name, p in net.named_parameters():
        assert torch.equal(d[name], same[name])
        if p.dim() >= 2:
            assert_close(d[name].flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
        else:
            assert torch.count_nonzero(d[name]) == 0                 # "zero": biases stay put
    w = get_random_direction(net, one_d="weights")
    r = get_random_direction(net, one_d="random")
    assert torch.equal(w["0.bias"], net[0].bias.detach())
    assert r["0.bias"].norm() == pytest.approx(float(net[0].bias.detach().norm()), rel=1e-5)
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert set(get_random_direction(bn.state_dict())) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    with pytest.raises(ValueError, match="one_d"):
        get_random_direction(net, one_d="bias")


# ---- orientation and figures -----------------------------------------------------------------

class Bowl(nn.Module):
    """Loss = (w0 - 0.5)^2 + 4 * (w1 + 0.2)^2 + w1: one known, off-centre, asymmetric minimum."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        f = (self.w[0] - 0.5) ** 2 + 4 * (self.w[1] + 0.2) ** 2 + self.w[1]
        return f.expand(x.shape[0], 1)


def _bowl_grid():
    net = Bowl()
    d1, d2 = {"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}
    X = torch.zeros(6, 1)
    return get_loss_grid(net, (X, X), lambda out, y: out.mean(), (d1, d2), (9, 5), ((-1, 1), (-1, 0.6)),
                         show_progress=False)


def test_orientation_z_rows_are_y_and_columns_are_x():
    grid = _bowl_grid()
    assert grid.z.shape == (5, 9)
    for i, yv in enumerate(grid.y.tolist()):
        for j, xv in enumerate(grid.x.tolist()):
            assert grid.z[i, j].item() == pytest.approx((xv - 0.5) ** 2 + 4 * (yv + 0.2) ** 2 + yv, abs=1e-5)
    fig = plot_loss.plot_contour(grid)
    contour = fig.data[0]
    z = torch.tensor(contour.z)
    i, j = divmod(int(z.argmin()), z.shape[1])
    # plotly draws z[i][j] at (x[j], y[i]); the minimum of the bowl is at x = 0.5, y = -0.325
    assert contour.x[j] == pytest.approx(0.5) and contour.y[i] == pytest.approx(-0.2, abs=0.21)
    assert contour.y[i] < 0 < contour.x[j]


def test_contour_draws_the_trajectory_with_start_end_and_variance_labels():
    states, *_ = _trajectory(mlp(), n=8)
    pca = get_state_directions(states, n_states=None)
    grid = plot_loss.LossGrid(x=torch.linspace(-4, 1, 6), y=torch.linspace(-1, 1, 4), z=torch.rand(4, 6) + 1)
    fig = plot_loss.plot_contour(grid, pca)
    traces = {t.name: t for t in fig.data}
    assert {"loss", "trajectory", "start", "end"} <= set(traces)
    c = pca.coordinates
    assert (traces["start"].x[0], traces["start"].y[0]) == pytest.approx((float(c[0, 0]), float(c[0, 1])))
    assert (traces["end"].x[0], traces["end"].y[0]) == pytest.approx((float(c[-1, 0]), float(c[-1, 1])))
    assert f"{100 * pca.explained_variance[0]:.1f}%" in fig.layout.xaxis.title.text
    assert f"{100 * pca.explained_variance[1]:.1f}%" in fig.layout.yaxis.title.text
    surface = plot_loss.plot_surface(grid, pca, log_scale=True)
    assert "PC1" in surface.layout.scene.xaxis.title.text and "PC2" in surface.layout.scene.yaxis.title.text
    assert surface.layout.scene.zaxis.title.text == "log10 loss"
    assert_close(torch.tensor(surface.data[0].z, dtype=torch.float32), grid.z.log10())


def test_plot_losses_is_labelled():
    fig = plot_loss.plot_losses({"SGD": [3, 2, 1.5, 1.2], "Adam": [3, 1, 0.7, 0.6]}, [1.4, 0.9],
                                steps_per_epoch=2)
    assert [t.name for t in fig.data] == ["SGD", "Adam", "validation"]
    assert list(fig.data[2].x) == [2, 4]
    assert fig.layout.xaxis.title.text == "step" and fig.layout.yaxis.title.text == "loss"


def test_figures_carry_html_that_exported_notebooks_show(monkeypatch):
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")   # plotly's choice in a kernel
    fig = plot_loss.plot_contour(_bowl_grid())
    assert pio.renderers.default == plot_loss.PORTABLE_RENDERER
    bundle = pio.renderers._build_mime_bundle(fig.to_dict())
    assert "application/vnd.plotly.v1+json" in bundle                # JupyterLab
    assert "cdn.plot.ly" in bundle["text/html"]                     # exported HTML, Colab
    monkeypatch.setattr(pio.renderers, "default", "png")             # a user's own choice stays
    plot_loss.plot_surface(_bowl_grid())
    assert pio.renderers.default == "png"


def test_fast_pooling_is_bitwise_max_pool_and_only_for_plain_2x2_pools():
    x = torch.randn(3, 4, 9, 7)                                        # odd sizes: floor mode crops
    assert torch.equal(tracing.max_pool_2x2(x), F.max_pool2d(x, 2))
    assert torch.equal(tracing.max_pool_2x2(x.contiguous(memory_format=torch.channels_last)),
                       F.max_pool2d(x, 2))
    assert tracing.is_plain_2x2_pool(nn.MaxPool2d(2)) and tracing.is_plain_2x2_pool(nn.MaxPool2d((2, 2), 2))
    for other in (nn.MaxPool2d(3), nn.MaxPool2d(2, 1), nn.MaxPool2d(2, padding=1), nn.MaxPool2d(2, ceil_mode=True),
                  nn.AvgPool2d(2)):
        assert not tracing.is_plain_2x2_pool(other)
    net = garment_classifier().eval()
    fast = tracing.fast_trace(net, torch.randn(2, 1, 28, 28))
    assert fast is not None and "max_pool_2x2" in fast.code
    assert tracing.fast_trace(Untraceable().eval(), torch.randn(2, 1, 28, 28)) is None


def test_fast_pooling_also_replaces_functional_max_pool2d():
    fast = tracing.fast_trace(SmallCNN().eval(), torch.randn(2, 1, 28, 28))
    targets = [n.target for n in fast.graph.nodes if n.op == "call_function"]
    assert targets.count(tracing.max_pool_2x2) == 2 and F.max_pool2d not in targets

    class Other(nn.Module):                            # 3x3 windows and stride 1 stay max_pool2d
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(F.max_pool2d(F.max_pool2d(x, 3), 2, stride=1).flatten(1)[:, :4])

    assert tracing.fast_trace(Other().eval(), torch.randn(2, 1, 12, 12)) is None


# ---- the choice of strategy ------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Timed:
    """A stand-in strategy that costs ``per_point`` fake seconds per grid point over all the data
    (its first pass also ``warm_up`` more); ``fails`` makes every pass raise."""

    def __init__(self, clock, name, points_per_pass, per_point, warm_up=0.0, fails=False):
        self.clock, self.name, self.label = clock, name, name
        self.points_per_pass, self.slice_size = points_per_pass, 256
        self.per_point, self.warm_up, self.fails, self.passes = per_point, warm_up, fails, []
        self.problem = SimpleNamespace(X=torch.zeros(1000, 3), Y=torch.zeros(1000), device=torch.device("cpu"))

    def pieces(self, x, y):
        return [(x, y)]

    def run(self, coefs, pieces):
        if self.fails:
            raise RuntimeError("Batching rule not implemented")
        samples = sum(len(x) for x, _ in pieces)
        self.clock.now += self.per_point * len(coefs) * samples / 1000 + (self.warm_up if not self.passes else 0.0)
        self.passes.append((len(coefs), samples))
        return coefs[:, 0] * 1000                      # a total that tells the points apart

    def totals(self, coefs):
        return self.run(coefs, [(self.problem.X, self.problem.Y)])


def test_auto_commits_to_the_strategy_with_the_least_time_per_point():
    clock = FakeClock()
    coefs = torch.arange(64.0).repeat(2, 1).T                    # point i is (i, i)
    loop = Timed(clock, "loop", 1, per_point=1.0)
    vmap = Timed(clock, "vmap", 20, per_point=1.5, warm_up=100.0)       # a pass takes longest of all
    first = Timed(clock, "first_layer", 20, per_point=0.6, warm_up=500.0)  # the warm-up is not counted
    chosen, trial = choice.fastest([first, vmap, loop], coefs, 100, timer=clock)
    assert chosen is first
    assert trial.costs == pytest.approx({"first_layer": 0.6, "vmap": 1.5, "loop": 1.0})
    rounds = choice.TRIAL_ROUNDS + 1
    assert vmap.passes == [(20, 100)] * rounds                     # batched: one slice of the data
    assert loop.passes == [(1, 1000)] * rounds                      # the loop: real points, all the data
    assert {i: float(t) for i, t in trial.done.items()} == {i: 1000.0 * i for i in range(rounds)}
    # Only a clear lead replaces the loop (the trial's slice is small and warm in the caches).
    close = Timed(clock, "first_layer", 20, per_point=0.95)
    assert choice.fastest([close, loop], coefs, 100, timer=clock)[0] is loop
    # A vmap the model does not support is dropped, and the loop wins over a slower vmap.
    broken = Timed(clock, "first_layer", 20, per_point=0.1, fails=True)
    assert choice.fastest([broken, vmap, loop], coefs, 100, timer=clock)[0] is loop
    with pytest.raises(RuntimeError, match="Batching rule"):
        choice.fastest([broken], coefs, 100, timer=clock)


def test_the_trial_is_a_small_share_of_the_grid_and_the_loop_always_a_candidate():
    clock = FakeClock()
    found = [Timed(clock, "first_layer", 32, 1.0), Timed(clock, "vmap", 32, 1.0), Timed(clock, "loop", 1, 1.0)]
    for points, samples in ((400, 3200), (64, 3200), (12, 150)):
        n = choice.trial_samples(found, points, samples)
        assert n <= min(256, samples)
        work = (choice.TRIAL_ROUNDS + 1) * 2 * min(32, points) * n    # the batched passes' points x samples
        assert n == 16 or work <= choice.TRIAL_SHARE * points * samples, (points, samples, n)
    X, Y = _data(20)
    for make, _ in MODELS.values():
        net = make().eval()
        problem = grid_module._problem(net, (X, Y), nn.CrossEntropyLoss(), _directions(net))
        labels = [s.label for s in choice.candidates(problem, "auto", 12)]
        assert "loop" in labels and len(set(labels)) == len(labels), labels


# ---- the tuple form of the results -----------------------------------------------------------

# np.copy of a tensor: numpy 2 notes that torch's __array__ takes no copy keyword (hidden outside pytest).
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_code_written_for_the_tuple_form_runs_unchanged():
    """The calls exactly as a notebook written against the tuple form makes them."""
    import plotly.graph_objects as go

    from plot_loss import plot_contour

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    X, Y = _data(64)
    data_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.02)
    losses, states = [], []
    for _ in range(8):
        for x, y in data_loader:
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            states.append(copy.deepcopy(net.state_dict()))

    directions, state_ids, loss_coordinates = get_state_directions(states, n_states=10, start_from=0, reference_id=-1)
    x, y, Z, _ = get_loss_grid(net, data_loader, loss_fn, directions=directions, resolution=(20, 20),
                               scale=loss_coordinates.abs().max().item())
    fig = plot_contour(np.copy(x), np.copy(y), np.copy(Z), scale=True)
    fig.add_traces(go.Scatter(x=np.copy(loss_coordinates[0].cpu().numpy()),
                              y=np.copy(loss_coordinates[1].cpu().numpy())))
    samples = np.array(losses)[state_ids]

    pca = get_state_directions(states, n_states=10)
    assert len(state_ids) == 10 and state_ids == pca.state_ids and state_ids[-1] == len(states) - 1
    assert loss_coordinates.shape == (2, 10)
    assert_close(loss_coordinates, pca.coordinates.T)
    assert loss_coordinates[:, -1].abs().max() < 1e-5                  # the last state is the origin
    assert all(torch.equal(directions[k][n], pca.directions[k][n]) for k in range(2) for n in directions[k])
    assert samples.tolist() == [losses[i] for i in state_ids]
    half = float(pca.coordinates.abs().max())
    grid = get_loss_grid(net, (X, Y), loss_fn, pca, 20, half, show_progress=False)
    assert Z.shape == (20, 20) and float(x[0]) == pytest.approx(-half) and float(y[-1]) == pytest.approx(half)
    assert_close(Z, grid.z, **TOL)
    contour, path = fig.data
    assert contour.type == "contour" and contour.showscale
    assert np.allclose(np.asarray(contour.z), grid.z.numpy()) and np.allclose(contour.x, grid.x.numpy())
    assert np.allclose(path.x, pca.coordinates[:, 0].numpy()) and np.allclose(path.y, pca.coordinates[:, 1].numpy())
    # a later start and a fixed scale, as the later runs of such a notebook do
    directions, state_ids, loss_coordinates = get_state_directions(states, n_states=10, start_from=12, reference_id=-1)
    x, y, Z, _ = get_loss_grid(net, data_loader, loss_fn, directions=directions, resolution=(20, 20), scale=1)
    assert state_ids[0] == 12 and loss_coordinates.shape == (2, 10) and float(x[-1]) == 1.0 and Z.shape == (20, 20)


def test_figures_take_arrays_too():
    x, y = np.linspace(-1, 1, 5), np.linspace(-2, 2, 3)
    z = np.add.outer(y ** 2, x)                                         # z[i, j] at (x[j], y[i])
    fig = plot_loss.plot_contour(x, y, z, scale=False, plot_size=(500, 400))
    assert np.allclose(np.asarray(fig.data[0].z), z) and np.allclose(fig.data[0].y, y)
    assert fig.data[0].showscale is False and (fig.layout.width, fig.layout.height) == (500, 400)
    surface = plot_loss.plot_surface(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(z))
    assert np.allclose(np.asarray(surface.data[0].z), z)
    with pytest.raises(TypeError, match="LossGrid"):
        plot_loss.plot_contour(z)
    with pytest.raises(ValueError, match="2-D"):
        plot_loss.plot_contour(x, y, x)


def test_a_small_loss_keeps_its_digits_when_the_logits_are_large():
    """Confident logits (about 1000): the loss is small, and float32 cannot afford to compute it
    as the difference of two numbers near 1000 (logsumexp(logits) - logit[target])."""
    torch.manual_seed(0)
    net = nn.Linear(8, 3)
    with torch.no_grad():
        net.weight.mul_(0.1)
        net.bias.copy_(torch.tensor([1000.0, 996.0, 993.0]))
    X, Y = torch.randn(200, 8), torch.zeros(200, dtype=torch.long)
    d1, d2 = _directions(net)
    xs, ys = torch.linspace(-1, 1, 3, dtype=torch.float64), torch.linspace(-1, 1, 2, dtype=torch.float64)
    truth = per_point_loop(net.double(), X.double(), Y, nn.CrossEntropyLoss(),
                           {k: v.double() for k, v in d1.items()}, {k: v.double() for k, v in d2.items()}, xs, ys)
    net.float()
    for strategy in ("vmap", "loop"):
        grid = get_loss_grid(net, (X, Y), nn.CrossEntropyLoss(), (d1, d2), (3, 2), 1.0, strategy=strategy,
                             show_progress=False)
        assert_close(grid.z.double(), truth, rtol=1e-5, atol=2e-7, msg=strategy)


def test_batch_norms_fold_into_the_convolution_before_them_only_where_that_is_exact():
    net = _prepared(Residual())
    x = torch.randn(6, 1, 28, 28)
    fast = tracing.fast_trace(net, x[:2])
    targets = [n.target for n in fast.graph.nodes if n.op == "call_function"]
    assert targets.count(tracing.conv_bn) == 3                        # stem and both in the block
    assert not any(isinstance(fast.get_submodule(n.target), nn.BatchNorm2d)
                   for n in fast.graph.nodes if n.op == "call_module")
    with torch.no_grad():
        assert_close(fast(x), net(x), rtol=1e-5, atol=1e-6)

    class Unfoldable(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)               # conv output used twice
            self.conv2, self.bn2 = nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2, track_running_stats=False)
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            h = self.conv(x)
            h = self.bn(h) + h
            return self.fc(self.bn2(self.conv2(h)).mean((2, 3)))      # batch statistics even in eval

    gm = torch.fx.symbolic_trace(_prepared(Unfoldable()))
    assert not tracing.fold_batch_norms(gm)
