"""Hidden tests of the assignment "landscape" (source/landscape/landscape.ipynb).

Every function takes the student's objects and raises AssertionError with a message that
quotes the rule of the sheet it checks. They build tiny synthetic models and data of their
own (double precision, a few dozen samples), never the student's MNIST runs, so they are
fast and tell apart what they exist to tell apart:

* the optimizers run next to their ``torch.optim`` twins (SGD with momentum, Nesterov,
  Adagrad, RMSprop, Adam; the learning-rate decay as a ``LambdaLR`` schedule stepped after
  every step), whole trajectories, on two models with parameter tensors of four different
  shapes, with settings where the mistakes differ: a large ε (inside vs outside the root),
  betas whose bias correction matters, a decay large enough that per-step and per-epoch
  schedules part after two steps; GD also against its formula. A class that keeps one
  state for all parameters, counts steps per parameter, or keeps its state outside
  ``self.state[p]`` fails;
* ``training_step`` and ``the_loop`` against a reference loop on a model with dropout whose
  ``forward`` records the mode and whether gradients are on: validation in train mode or
  with gradients, states saved as references instead of copies, gradients never reset, the
  loss averaged over batches instead of samples, and the SWA model's average all show.
  ``the_loop`` runs with the reference ``training_step`` (a slip in the step costs its own
  cell only);
* ``plot_landscape`` against ``plot_loss.get_loss_grid`` on the sheet's settings;
* the bonus claim, re-run with the ``torch.optim`` twins.

What each function needs is in its signature; the notebook's test cells call them in their
hidden regions.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from torch import nn

from hidden_tests._spies import optimizers_created
from utils.checks import check_close, check_tensor

CPU = torch.device("cpu")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def single_thread(test):
    """Run a test on one CPU thread: its models are tiny, and on a busy machine the thread pool's
    synchronisation costs more than the arithmetic (measured: 10x on a loaded 2-core CPU)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return test(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


# ---- tiny models and data -------------------------------------------------------------------

class Odd(nn.Module):
    """Parameters of three shapes (a 3-D tensor, a matrix, a vector): state kept for one shape
    cannot serve the others."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 3, 2) * 0.5)
        self.v = nn.Parameter(torch.randn(3, 6) * 0.3)
        self.b = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        x = x.flatten(1)
        return torch.tanh(x @ self.v.T) @ self.w.sum(0) @ torch.ones(2, 3, dtype=x.dtype) + self.b


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3))


MODELS = {"an MLP with parameters (4, 6), (4,), (3, 4), (3,)": mlp,
          "a model with parameters (2, 3, 2), (3, 6), (3,)": Odd}


def make_model(factory, seed=0):
    torch.manual_seed(seed)
    return factory().double()


def batches(n_steps, seed=1, size=8):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (size,), generator=g))
            for _ in range(n_steps)]


def _flat(model):
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


def run(factory, make_optimizer, n_steps, schedule=None, seed=0):
    """The reference loop: the parameters (flattened into one row) before and after every step,
    and the optimizer."""
    model = make_model(factory, seed)
    optimizer = make_optimizer(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule) if schedule else None
    rows = [_flat(model)]
    for x, y in batches(n_steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        rows.append(_flat(model))
    return torch.stack(rows), optimizer, model


# ---- rules -----------------------------------------------------------------------------------

OWN_UPDATE = "write the update yourself, in step(), from p.grad"


@contextlib.contextmanager
def no_other_optimizer(cls, rule: str):
    """Fail if the student's class builds another torch.optim optimizer while it runs."""
    with optimizers_created(allowed=cls) as used:
        yield
    assert not used, f"your optimizer creates a torch.optim.{used[0]} inside, but the sheet says: {rule}"


def check_optimizer_class(cls, name: str) -> None:
    assert isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer), (
        f"the sheet says: {name} is a subclass of torch.optim.Optimizer (class {name}(torch.optim.Optimizer))")
    ready_made = [c.__name__ for c in cls.__mro__[1:]
                  if c is not torch.optim.Optimizer and c.__module__.startswith("torch.optim")]
    assert not ready_made, (f"{name} derives from torch.optim.{ready_made[0]}, but the sheet says: {OWN_UPDATE}; "
                            "derive from torch.optim.Optimizer itself")


def student_run(cls, name, factory, settings, n_steps, shapes_hint):
    try:
        with no_other_optimizer(cls, OWN_UPDATE):
            return run(factory, lambda ps: cls(ps, **settings), n_steps)
    except AssertionError:
        raise
    except Exception as exc:  # a crash on parameters of several shapes is the usual shared-state slip
        raise AssertionError(f"{name}(**{settings}) raised {type(exc).__name__}: {exc}; on a model with {shapes_hint}. "
                             "Is the state kept per parameter, in self.state[p], of that parameter's shape?") from None


def check_state_per_parameter(optimizer, model, name: str) -> None:
    params = list(model.parameters())
    missing = [tuple(p.shape) for p in params if not optimizer.state.get(p)]
    assert not missing, (
        f"after a few steps, {name}.state has no entry for the parameters of shapes {missing}: the sheet says "
        "keep each parameter's state in self.state[p] (a dict per parameter)")


def compare_with_twin(cls, name, twin, cases, hint, stateful=True, n_steps=12) -> None:
    """The student's class against its torch.optim twin: every case on every model.

    ``cases``: a list of (settings of the student's class, a factory of the twin, schedule or None)."""
    check_optimizer_class(cls, name)
    for model_name, factory in MODELS.items():
        for settings, make_twin, schedule in cases:
            mine, optimizer, model = student_run(cls, name, factory, settings, n_steps, model_name)
            reference, _, _ = run(factory, make_twin, n_steps, schedule)
            check_tensor(mine, f"the parameters during {n_steps} steps of {name}(**{settings})")
            check_close(mine, reference, f"the trajectory of {name}(**{settings}) on {model_name}", rtol=1e-6,
                        atol=1e-9, hint=hint)
            if stateful:
                check_state_per_parameter(optimizer, model, name)


# ---- Part 0 and 1 ----------------------------------------------------------------------------

@single_thread
def test_data(subset_images, subset_labels, full_batch_loader, mini_batch_loader, train_set) -> None:
    """0: the normalised subset of 50 batches of 64 and the two loaders."""
    from utils.mnist import as_tensors

    images, labels = as_tensors(train_set)
    expected = (images[:3200] - MNIST_MEAN) / MNIST_STD
    check_tensor(subset_images, "subset_images", shape=(3200, 1, 28, 28))
    check_close(subset_images, expected, "subset_images",
                hint="The sheet says: the first 50 * 64 training digits, normalised: (x - 0.1307) / 0.3081.")
    assert torch.equal(torch.as_tensor(subset_labels).cpu(), labels[:3200]), (
        "subset_labels should be the labels of the first 3,200 training digits, in order")
    full = list(full_batch_loader)
    assert len(full) == 1 and len(full[0][0]) == 3200, "the sheet says: the full-batch loader yields one batch of all 3,200 digits"
    check_close(full[0][0], expected, "the batch of full_batch_loader", hint="It holds the whole subset, in order.")
    epochs = [list(mini_batch_loader) for _ in range(2)]
    for epoch in epochs:
        assert [len(x) for x, _ in epoch] == [64] * 50, "the sheet says: the mini-batch loader yields 50 batches of 64"
    orders = []
    for epoch in epochs:
        x = torch.cat([b[0] for b in epoch]).reshape(3200, -1).cpu().double()
        key = x @ torch.linspace(1, 2, x.shape[1], dtype=torch.float64)  # one number per image
        ref = expected.reshape(3200, -1).double() @ torch.linspace(1, 2, x.shape[1], dtype=torch.float64)
        assert torch.allclose(key.sort().values, ref.sort().values, rtol=1e-5, atol=1e-4), (
            "every epoch of mini_batch_loader should visit each of the 3,200 digits of the subset once")
        orders.append(key)
    assert not torch.allclose(orders[0], orders[1]), (
        "the sheet says: the mini-batch loader shuffles (shuffle=True): two epochs came in the same order")


@single_thread
def test_one_fc_net(get_OneFCNet) -> None:
    """1: Flatten + Linear(784, 10), a new model per call, on the notebook's `device`."""
    namespace = get_OneFCNet.__globals__
    saved = {k: namespace[k] for k in ("device", "get_device") if k in namespace}
    meta = torch.device("meta")
    namespace["device"] = meta
    if "get_device" in namespace:
        namespace["get_device"] = lambda: meta
    try:
        moved = get_OneFCNet()
    finally:
        namespace.update(saved)
    assert isinstance(moved, nn.Module), f"get_OneFCNet should return an nn.Module, not a {type(moved).__name__}"
    assert all(p.device.type == "meta" for p in moved.parameters()), (
        "the sheet says: put the model on the automatically chosen device (.to(device)); when the grader "
        "changed `device`, the model stayed where it was")
    a, b = get_OneFCNet(), get_OneFCNet()
    params = list(a.parameters())
    assert sorted(tuple(p.shape) for p in params) == [(10,), (10, 784)], (
        "OneFCNet has one Linear layer from 784 to 10: a (10, 784) weight and a (10,) bias")
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())), (
        "every call should build a new model with its own random initialisation")
    weight = next(p for p in params if p.dim() == 2)
    bias = next(p for p in params if p.dim() == 1)
    x = torch.randn(5, 1, 28, 28, device=weight.device)
    with torch.no_grad():
        out = a(x)
        expected = x.reshape(5, -1) @ weight.T + bias
    check_close(out, expected, "OneFCNet's output", hint="Flatten the image, then one Linear layer, nothing after it.")


# ---- GD, training_step, the_loop ---------------------------------------------------------------

def _gd_formula(factory, lr, n_steps):
    model = make_model(factory)
    rows = [_flat(model)]
    for x, y in batches(n_steps):
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p.copy_(p - lr * g)
        rows.append(_flat(model))
    return torch.stack(rows)


@single_thread
def test_gd(GD) -> None:
    """GD: theta <- theta - lr * g, against the formula and torch.optim.SGD."""
    hint = "The sheet says: for every parameter p of every group, p <- p - lr * p.grad, in place, under no_grad."
    compare_with_twin(GD, "GD", None, [({"lr": 0.3}, lambda ps: torch.optim.SGD(ps, lr=0.3), None),
                                       ({"lr": 0.05}, lambda ps: torch.optim.SGD(ps, lr=0.05), None)],
                      hint, stateful=False)
    for factory in MODELS.values():
        mine, _, _ = student_run(GD, "GD", factory, {"lr": 0.2}, 6, "several parameters")
        check_close(mine, _gd_formula(factory, 0.2, 6), "the GD trajectory against the formula", rtol=1e-6, atol=1e-9,
                    hint=hint)


def _reference_step(model, optimizer, loss_fn, images, labels):
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


@single_thread
def test_training_step(training_step) -> None:
    """One optimizer step per call, gradients reset, the loss before the step as a float."""
    for name, factory in MODELS.items():
        for make in (lambda ps: torch.optim.SGD(ps, lr=0.2), lambda ps: torch.optim.Adam(ps, lr=0.05)):
            results = []
            for step in (training_step, _reference_step):
                model = make_model(factory)
                optimizer = make(model.parameters())
                losses = [step(model, optimizer, nn.CrossEntropyLoss(), x, y) for x, y in batches(6)]
                results.append((losses, _flat(model)))
            (mine, theta), (ref, ref_theta) = results
            assert all(isinstance(v, float) for v in mine), "the sheet says: training_step returns the loss as a Python float (loss.item())"
            check_close(mine, ref, f"the losses returned by training_step on {name}",
                        hint="Return the loss of the batch computed before the step.")
            check_close(theta, ref_theta, f"the parameters after 6 calls of training_step on {name}",
                        hint="Reset the gradients (optimizer.zero_grad()) before every backward(): backward() adds to .grad.")


class Spy(nn.Module):
    """An MLP with dropout whose forward records (batch size, training mode, gradients on)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.drop, self.fc2 = nn.Linear(6, 5), nn.Dropout(0.3), nn.Linear(5, 3)
        self.calls = []

    def forward(self, x):
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        return self.fc2(self.drop(torch.tanh(self.fc1(x.flatten(1)))))


def _loop_data():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(24, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (24,), generator=g)
    vx, vy = torch.randn(12, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (12,), generator=g)
    train = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 24, 8)]   # 3 batches of 8
    val = [(vx[i:i + 5], vy[i:i + 5]) for i in range(0, 12, 5)]  # 5, 5 and 2: a partial last batch
    return train, val


def _reference_evaluate(model, loader, loss_fn):
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            total += loss_fn(model(x), y).item() * len(y)
            n += len(y)
    return total / n


def _reference_loop(model, optimizer, train, val, n_epochs, loss_fn, swa_model=None):
    losses, val_losses = [], []
    states = [{k: v.detach().clone() for k, v in model.state_dict().items()}]
    for _ in range(n_epochs):
        model.train()
        for x, y in train:
            losses.append(_reference_step(model, optimizer, loss_fn, x, y))
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        if swa_model is not None:
            swa_model.update_parameters(model)
        val_losses.append(_reference_evaluate(model, val, loss_fn))
    return losses, val_losses, states


@single_thread
def test_evaluate(evaluate) -> None:
    train, val = _loop_data()
    torch.manual_seed(0)
    model = Spy().double()
    model.train()
    value = evaluate(model, val, nn.CrossEntropyLoss())
    assert isinstance(value, float), "the sheet says: evaluate returns a Python float"
    assert model.calls and all(not training for _, training, _ in model.calls), (
        "the sheet says: evaluate puts the model in evaluation mode (model.eval()): dropout was still on")
    assert all(not grad for _, _, grad in model.calls), (
        "the sheet says: evaluate computes without gradients (with torch.no_grad():)")
    check_close(value, _reference_evaluate(model, val, nn.CrossEntropyLoss()), "evaluate's loss",
                hint="Average over samples, not batches: the last batch may be smaller (weight each batch by its size).")


@single_thread
def test_the_loop(the_loop, evaluate) -> None:
    """the_loop (with the reference training_step) against the reference loop."""
    from torch.optim.swa_utils import AveragedModel

    test_evaluate(evaluate)
    train, val = _loop_data()
    namespace = the_loop.__globals__
    saved = namespace.get("training_step")
    results = []
    for loop in (the_loop, _reference_loop):
        torch.manual_seed(0)
        model = Spy().double()
        swa = AveragedModel(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5)
        namespace["training_step"] = _reference_step
        try:
            out = loop(model, optimizer, train, val, n_epochs=3, loss_fn=nn.CrossEntropyLoss(), swa_model=swa)
        finally:
            if saved is not None:
                namespace["training_step"] = saved
        results.append((out, model, swa))
    (mine, model, swa), ((ref_losses, ref_val, ref_states), ref_model, ref_swa) = results
    assert isinstance(mine, tuple) and len(mine) == 3, "the sheet says: the_loop returns (losses, val_losses, states)"
    losses, val_losses, states = mine
    assert isinstance(losses, list) and len(losses) == 9 and all(isinstance(v, float) for v in losses), (
        "the sheet says: losses holds one Python float per step (3 epochs of 3 batches: 9)")
    assert isinstance(val_losses, list) and len(val_losses) == 3, "the sheet says: val_losses holds one loss per epoch"
    assert isinstance(states, list) and len(states) == 10, (
        "the sheet says: states holds the state before training and after every step (9 steps: 10 states)")
    val_calls = [(training, grad) for size, training, grad in model.calls if size != 8]
    assert val_calls and all(not training for training, _ in val_calls), (
        "the sheet says: validate in evaluation mode (model.eval()); dropout was on during validation")
    assert all(not grad for _, grad in val_calls), "the sheet says: validate without gradients (torch.no_grad())"
    train_calls = [training for size, training, _ in model.calls if size == 8]
    assert all(train_calls), "the sheet says: train in training mode: call model.train() at the start of every epoch"
    for k, (state, ref) in enumerate(zip(states, ref_states)):
        assert isinstance(state, dict) and set(state) == set(ref), "every entry of states should be a copy of model.state_dict()"
        for name in ref:
            check_close(state[name], ref[name], f"states[{k}][{name!r}]",
                        hint="Save a copy after every step: {k: v.detach().clone() for k, v in model.state_dict().items()}; "
                             "state_dict() returns references that later steps overwrite.")
    check_close(losses, ref_losses, "the losses of the_loop", hint="One training_step per batch, in order.")
    check_close(val_losses, ref_val, "the validation losses of the_loop",
                hint="evaluate on val_loader after every epoch, averaged over samples.")
    assert int(swa.n_averaged) == 3, (
        f"the sheet says: update the SWA model once per epoch (swa_model.update_parameters(model)); it averaged "
        f"{int(swa.n_averaged)} times in 3 epochs")
    for (name, p), q in zip(swa.module.named_parameters(), ref_swa.module.parameters()):
        check_close(p, q, f"the SWA model's {name}", hint="Update it at the end of every epoch, after the epoch's last step.")
    # Without a SWA model (the default) the loop runs too.
    torch.manual_seed(0)
    plain = Spy().double()
    namespace["training_step"] = _reference_step
    try:
        the_loop(plain, torch.optim.SGD(plain.parameters(), lr=0.1), train, val, n_epochs=1, loss_fn=nn.CrossEntropyLoss())
    finally:
        if saved is not None:
            namespace["training_step"] = saved


# ---- the landscape ---------------------------------------------------------------------------

def _trace(fig, kind):
    return [t for t in fig.data if t.type == kind]


@single_thread
def test_plot_landscape(plot_landscape) -> None:
    import plotly.graph_objects as go

    from plot_loss import get_loss_grid, get_state_directions

    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.5)
    states = [{k: v.clone() for k, v in model.state_dict().items()}]
    for i in range(12):
        _reference_step(model, optimizer, nn.CrossEntropyLoss(), x[i % 4 * 10:(i % 4 + 1) * 10], y[i % 4 * 10:(i % 4 + 1) * 10])
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    out = plot_landscape(model, states, (x, y), title="a test", resolution=7)
    assert isinstance(out, tuple) and len(out) == 2, "the sheet says: plot_landscape returns (fig_contour, fig_surface)"
    fig_contour, fig_surface = out
    assert isinstance(fig_contour, go.Figure) and isinstance(fig_surface, go.Figure), (
        "plot_landscape should return the two plotly figures of plot_contour and plot_surface")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), "plot_landscape changed the model's parameters: it must leave the model as it was"
    pca = get_state_directions(states, n_states=None)
    grid = get_loss_grid(model, (x, y), nn.CrossEntropyLoss(), pca, 7, pca.grid_range(), show_progress=False)
    contours = _trace(fig_contour, "contour")
    assert contours, "fig_contour has no contour: draw it with plot_contour(grid, pca)"
    z = np.asarray(contours[0].z, dtype=float)
    hint = ("The sheet says: directions from get_state_directions(states, n_states=None), the grid from "
            "get_loss_grid(model, data, nn.CrossEntropyLoss(), pca, resolution, pca.grid_range()).")
    check_close(z, grid.z, "the loss grid in fig_contour", hint=hint)
    coords = pca.coordinates.numpy()
    drawn = [np.stack([np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)], 1)
             for t in _trace(fig_contour, "scatter") if t.x is not None and len(t.x) == len(coords)]
    assert any(np.allclose(d, coords, rtol=1e-4, atol=1e-6) for d in drawn), (
        "fig_contour does not show the trajectory: pass pca to plot_contour(grid, pca)")
    surfaces = _trace(fig_surface, "surface")
    assert surfaces, "fig_surface has no surface: draw it with plot_surface(grid, pca)"
    check_close(np.asarray(surfaces[0].z, dtype=float), grid.z, "the loss grid in fig_surface", hint=hint)


# ---- Part 2: the optimizers ------------------------------------------------------------------

@single_thread
def test_sgdwm(SGDwM) -> None:
    hint = "The sheet says: v <- momentum * v + g (v starts at 0), then p <- p - lr * v; one v per parameter."
    compare_with_twin(SGDwM, "SGDwM", None, [
        ({"lr": 0.1, "momentum": 0.9}, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), None),
        ({"lr": 0.3, "momentum": 0.5}, lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.5), None),
        ({"lr": 0.05}, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9), None)], hint)


@single_thread
def test_nagd(NAGD) -> None:
    hint = ("The sheet says: v <- momentum * v + g, then p <- p - lr * (g + momentum * v), with the new v; "
            "one v per parameter.")
    compare_with_twin(NAGD, "NAGD", None, [
        ({"lr": 0.1, "momentum": 0.9}, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), None),
        ({"lr": 0.3, "momentum": 0.5}, lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.5, nesterov=True), None),
        ({"lr": 0.05}, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), None)], hint)


@single_thread
def test_sgdwmld(SGDwMLD) -> None:
    hint = ("The sheet says: step t = 0, 1, 2, ... (counted per optimizer step, not per parameter or epoch) "
            "uses lr_t = lr / (1 + decay * t): v <- momentum * v + g, then p <- p - lr_t * v.")
    cases = []
    for lr, momentum, decay in ((0.2, 0.9, 0.3), (0.4, 0.5, 1.0), (0.1, 0.8, 0.05)):
        cases.append(({"lr": lr, "momentum": momentum, "decay": decay},
                      lambda ps, lr=lr, m=momentum: torch.optim.SGD(ps, lr=lr, momentum=m),
                      lambda t, d=decay: 1.0 / (1.0 + d * t)))
    compare_with_twin(SGDwMLD, "SGDwMLD", None, cases, hint)


@single_thread
def test_adagrad(AdaGrad) -> None:
    hint = "The sheet says: G <- G + g**2 (G starts at 0), then p <- p - lr * g / (sqrt(G) + eps), eps outside the root."
    compare_with_twin(AdaGrad, "AdaGrad", None, [
        ({"lr": 0.1, "eps": 0.1}, lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=0.1), None),
        ({"lr": 0.5, "eps": 1e-10}, lambda ps: torch.optim.Adagrad(ps, lr=0.5, eps=1e-10), None),
        ({"lr": 0.3, "eps": 1.0}, lambda ps: torch.optim.Adagrad(ps, lr=0.3, eps=1.0), None)], hint)


@single_thread
def test_rmsprob(RMSProb) -> None:
    hint = ("The sheet says: V <- alpha * V + (1 - alpha) * g**2 first (V starts at 0), then "
            "p <- p - lr * g / (sqrt(V) + eps) with the new V, eps outside the root.")
    compare_with_twin(RMSProb, "RMSProb", None, [
        ({"lr": 0.01, "alpha": 0.9, "eps": 0.1}, lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=0.1), None),
        ({"lr": 0.05, "alpha": 0.5, "eps": 1e-8}, lambda ps: torch.optim.RMSprop(ps, lr=0.05, alpha=0.5, eps=1e-8), None),
        ({"lr": 0.02, "alpha": 0.99, "eps": 1.0}, lambda ps: torch.optim.RMSprop(ps, lr=0.02, alpha=0.99, eps=1.0), None)],
        hint)


@single_thread
def test_adam(Adam) -> None:
    hint = ("The sheet says: t counts the optimizer's steps (one t for all parameters); m and v start at 0; "
            "correct both by 1 - beta**t; add eps after the square root.")
    compare_with_twin(Adam, "Adam", None, [
        ({"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8}, lambda ps: torch.optim.Adam(ps, lr=0.05), None),
        ({"lr": 0.1, "betas": (0.8, 0.99), "eps": 0.1}, lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), eps=0.1), None),
        ({"lr": 0.02, "betas": (0.5, 0.9), "eps": 1.0}, lambda ps: torch.optim.Adam(ps, lr=0.02, betas=(0.5, 0.9), eps=1.0), None)],
        hint)


# ---- SWA ---------------------------------------------------------------------------------------

@single_thread
def test_swa(swa_model, swa_base, swa_val_loss, n_epochs, val_loader) -> None:
    """3.1: an AveragedModel of the trained model, averaged once per epoch, evaluated with evaluate.
    (Where in the epoch the_loop averages is checked in test_the_loop.)"""
    from torch.optim.swa_utils import AveragedModel

    assert isinstance(swa_model, AveragedModel), "swa_model should be a torch.optim.swa_utils.AveragedModel"
    assert int(swa_model.n_averaged) == n_epochs, (
        f"the sheet says: pass swa_model to the_loop, which averages once per epoch ({n_epochs} epochs); swa_model "
        f"averaged {int(swa_model.n_averaged)} models")
    averaged = dict(swa_model.module.named_parameters())
    trained = dict(swa_base.named_parameters())
    assert set(averaged) == set(trained), "swa_model should be AveragedModel(swa_base), the model the_loop trains"
    assert not all(torch.equal(averaged[k], trained[k]) for k in trained), (
        "swa_model holds exactly the trained model's last parameters, not an average over the epochs: create it "
        "before training and pass it to the_loop")
    assert isinstance(swa_val_loss, float), "swa_val_loss should be a Python float (evaluate returns one)"
    check_close(swa_val_loss, _reference_evaluate(swa_model, val_loader, nn.CrossEntropyLoss()), "swa_val_loss",
                hint="The validation loss of the averaged model: evaluate(swa_model, val_loader, loss_fn).")


# ---- Bonus -------------------------------------------------------------------------------------

TWINS = {
    "SGDwMLD": lambda decay=0.0, momentum=0.9, lr=0.01: (
        lambda ps: torch.optim.SGD(ps, lr=lr, momentum=momentum), lambda t: 1.0 / (1.0 + decay * t)),
    "AdaGrad": lambda lr=0.01, eps=1e-10: (lambda ps: torch.optim.Adagrad(ps, lr=lr, eps=eps), None),
    "RMSProb": lambda lr=0.01, alpha=0.99, eps=1e-8: (lambda ps: torch.optim.RMSprop(ps, lr=lr, alpha=alpha, eps=eps), None),
    "Adam": lambda lr=1e-3, betas=(0.9, 0.999), eps=1e-8: (lambda ps: torch.optim.Adam(ps, lr=lr, betas=betas, eps=eps), None),
}


def test_tuning_claim(tuning_run, name, settings, claimed_test_accuracy, baseline_accuracy) -> None:
    """The claim re-run with torch.optim's twin of the claimed optimizer (through the notebook's
    provided ``tuning_run``, which takes an optimizer factory and a schedule)."""
    assert name in TWINS, f"the claimed optimizer should be one of {sorted(TWINS)}, not {name!r}"
    make, schedule = TWINS[name](**settings)
    _, test_accuracy = tuning_run(make, schedule)
    assert abs(test_accuracy - claimed_test_accuracy) <= 0.01, (
        f"with torch.optim's twin of {name}, your settings do not reach the test accuracy you claim: "
        "is your optimizer correct?")
    assert test_accuracy >= baseline_accuracy + 0.01, (
        "with torch.optim's twin, your configuration does not beat the baseline by one percentage point")
