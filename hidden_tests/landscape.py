"""Hidden tests of the assignment "landscape" (source/landscape/landscape.ipynb).

Every test function takes the student's objects and raises AssertionError with a message that
quotes the rule of the sheet it checks. They build tiny models and data of their own (double
precision, a few dozen samples), never the student's MNIST runs, so they are fast and tell
apart what they exist to tell apart:

* the optimizers run next to their ``torch.optim`` twins (SGD with momentum, Nesterov, Adagrad,
  RMSprop, Adam; the learning-rate decay as a ``LambdaLR`` schedule stepped after every step),
  whole trajectories, on the shared fixture: two models whose parameters have several shapes,
  one frozen parameter and one that the loss never uses (both without a gradient), trained
  with one parameter group and with two groups of different settings. Settings read from
  ``self`` or ``defaults`` instead of the group, a step counter that advances per group or per
  parameter, a forgotten ``if p.grad is None``, state shared between parameters, a large ε
  inside instead of outside the root: all change the trajectory or raise;
* ``training_step``, ``evaluate``, ``the_loop`` and ``train_with_swa`` against reference
  versions, on a model with dropout and batch norm whose ``forward`` records the mode and the
  gradient switch, with spies on the optimizer's steps and on optimizers created inside, on
  loaders of the test's own (a partial last batch): models never stepped or stepped twice,
  a throw-away optimizer, a loader other than the one passed, states that track gradients or
  miss buffers, gradients switched off for the rest of the session, all show;
* ``plot_landscape`` against ``plot_loss.get_loss_grid`` on the sheet's settings, titles included;
* the bonus claim against the log of ``tuning_run`` (chosen on validation, test accuracy
  reported) and re-run with the reference optimizer.

No cascade: ``references_before`` puts reference versions of every earlier exercise into the
notebook's namespace at the top of each test cell, so the visible and hidden checks of later
exercises, and the solution cells that call earlier code (``train_with_swa`` calls
``the_loop``; the bonus trains with the Part 2 optimizers), run on references when the
notebook is graded. One slip costs the points of its own exercise only.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from torch import nn

from hidden_tests._spies import optimizers_created
from hidden_tests.common import single_thread, using
from utils.checks import check_close, check_tensor
from utils.variant import DEFAULTS, variant

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
SUBSET = 50 * 64  # the sheet's subset: 50 batches of 64, from the student's own first digit


def own_first(student_id: str = "") -> int:
    """The index of the student's first digit (utils/variant.py; the grader's id wins over the typed one)."""
    return variant("landscape", student_id).numbers.first




# ---- the shared fixture: tiny models, two parameter groups, data ----------------------------

class Odd(nn.Module):
    """Parameters of three shapes (a 3-D tensor, a matrix, a vector), a frozen one and one the
    loss never uses: state kept for one shape cannot serve the others, and two parameters
    never get a gradient."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 3, 2) * 0.5)
        self.v = nn.Parameter(torch.randn(3, 6) * 0.3)
        self.b = nn.Parameter(torch.zeros(3))
        self.frozen = nn.Parameter(torch.randn(3) * 0.1, requires_grad=False)
        self.unused = nn.Parameter(torch.randn(4))

    def forward(self, x):
        x = x.flatten(1)
        return torch.tanh(x @ self.v.T) @ self.w.sum(0) @ torch.ones(2, 3, dtype=x.dtype) + self.b + self.frozen


def mlp():
    """An MLP whose first bias is frozen."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3))
    model[1].bias.requires_grad_(False)
    return model


MODELS = {"an MLP with parameters (4, 6), (4,) (frozen), (3, 4), (3,)": mlp,
          "a model with parameters (2, 3, 2), (3, 6), (3,), (3,) (frozen), (4,) (unused)": Odd}
FIXTURE = ("models whose parameters have several shapes, one frozen and one unused (both without a gradient), "
           "in one parameter group and in two groups with different settings")


def make_model(factory, seed=0):
    torch.manual_seed(seed)
    return factory().double()


def two_groups(model, overrides):
    """Two parameter groups, every other parameter: the first with its own settings (``overrides``),
    the second with the optimizer's defaults. Both hold parameters with and without gradients."""
    params = list(model.parameters())
    return [{"params": params[0::2], **overrides}, {"params": params[1::2]}]


def batches(n_steps, seed=1, size=8):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (size,), generator=g))
            for _ in range(n_steps)]


def _flat(model):
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


def run(factory, make_optimizer, n_steps, schedule=None, groups=None, seed=0):
    """The reference loop: the parameters (flattened into one row) before and after every step,
    the optimizer and the model. ``groups``: settings of the first of two parameter groups (see
    ``two_groups``), or None for one group; ``schedule``: a LambdaLR factor (or one per group)."""
    model = make_model(factory, seed)
    optimizer = make_optimizer(model.parameters() if groups is None else two_groups(model, groups))
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


# ---- spies ------------------------------------------------------------------------------------

OWN_UPDATE = "write the update yourself, in step(), from p.grad"


@contextlib.contextmanager
def no_other_optimizer(cls, rule: str):
    """Fail if the code under test builds a torch.optim optimizer (other than ``cls``) while it runs."""
    with optimizers_created(allowed=cls) as used:
        yield
    assert not used, f"a torch.optim.{used[0]} was created inside, but the sheet says: {rule}"


@contextlib.contextmanager
def counting_steps(optimizer):
    """Yield a list that holds one entry per ``optimizer.step()`` taken inside the block."""
    taken: list[int] = []
    handle = optimizer.register_step_post_hook(lambda *_: taken.append(1))
    try:
        yield taken
    finally:
        handle.remove()


def check_gradients_on(where: str) -> None:
    """After student code returns, autograd must still be on (it was on when the code was called)."""
    if not torch.is_grad_enabled():
        torch.set_grad_enabled(True)  # the rest of the grading session needs it
        raise AssertionError(f"after {where}, gradients are switched off for the rest of the session: switch them "
                             "off only inside a block (with torch.no_grad(): ...), never with torch.set_grad_enabled(False)")


def call(func, where: str, *args, **kwargs):
    """Call student code; an exception becomes an AssertionError that says where it came from."""
    try:
        return func(*args, **kwargs)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - any crash is the student's code failing this check
        raise AssertionError(f"{where} raised {type(exc).__name__}: {exc}") from None


# ---- the optimizers against their twins ------------------------------------------------------

def check_optimizer_class(cls, name: str) -> None:
    assert isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer), (
        f"the sheet says: {name} is a subclass of torch.optim.Optimizer (class {name}(torch.optim.Optimizer))")
    ready_made = [c.__name__ for c in cls.__mro__[1:]
                  if c is not torch.optim.Optimizer and c.__module__.startswith("torch.optim")]
    assert not ready_made, (f"{name} derives from torch.optim.{ready_made[0]}, but the sheet says: {OWN_UPDATE}; "
                            "derive from torch.optim.Optimizer itself")


def student_run(cls, name, factory, settings, n_steps, model_name, groups=None):
    where = f"{name}(**{settings})" + (f" with a first parameter group {groups}" if groups else "")
    try:
        with no_other_optimizer(cls, OWN_UPDATE):
            return run(factory, lambda ps: cls(ps, **settings), n_steps, groups=groups)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash on the fixture is the usual slip with state or p.grad
        raise AssertionError(
            f"{where} raised {type(exc).__name__}: {exc}; on {model_name}. The sheet says: keep each parameter's "
            "state in self.state[p] (of that parameter's shape), and skip parameters whose p.grad is None") from None


def check_state_per_parameter(optimizer, model, name: str) -> None:
    stepped = [p for p in model.parameters() if p.grad is not None]
    missing = [tuple(p.shape) for p in stepped if not optimizer.state.get(p)]
    assert not missing, (
        f"after a few steps, {name}.state has no entry for the parameters of shapes {missing}: the sheet says "
        "keep each parameter's state in self.state[p] (a dict per parameter)")


def compare_with_twin(cls, name, cases, hint, stateful=True, n_steps=12) -> None:
    """The student's class against its torch.optim twin: every case on every model.

    ``cases``: (settings of the student's class, settings of the first of two parameter groups or
    None for one group, a factory of the twin, a LambdaLR schedule or None)."""
    check_optimizer_class(cls, name)
    for model_name, factory in MODELS.items():
        for settings, groups, make_twin, schedule in cases:
            mine, optimizer, model = student_run(cls, name, factory, settings, n_steps, model_name, groups)
            reference, _, _ = run(factory, make_twin, n_steps, schedule, groups)
            where = f"{name}(**{settings})" + (f" with a first parameter group {groups}" if groups else "")
            check_tensor(mine, f"the parameters during {n_steps} steps of {where}")
            check_close(mine, reference, f"the trajectory of {where} on {model_name}", rtol=1e-6, atol=1e-9,
                        hint=hint + " Read every setting from the parameter group (group['lr'], ...), never from "
                                    "self or the defaults, and skip parameters whose p.grad is None.")
            if stateful:
                check_state_per_parameter(optimizer, model, name)


def _gd_formula(factory, lr, n_steps):
    model = make_model(factory)
    rows = [_flat(model)]
    for x, y in batches(n_steps):
        params = [p for p in model.parameters() if p.requires_grad]
        out = nn.functional.cross_entropy(model(x), y)
        grads = torch.autograd.grad(out, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is not None:
                    p.copy_(p - lr * g)
        rows.append(_flat(model))
    return torch.stack(rows)


@single_thread
def test_gd(GD) -> None:
    """1.2: theta <- theta - lr * g, against the formula and torch.optim.SGD."""
    hint = "The sheet says: for every parameter p of every group, p <- p - group['lr'] * p.grad, in place, under no_grad."
    sgd = torch.optim.SGD
    compare_with_twin(GD, "GD", [({"lr": 0.3}, None, lambda ps: sgd(ps, lr=0.3), None),
                                 ({"lr": 0.05}, None, lambda ps: sgd(ps, lr=0.05), None),
                                 ({"lr": 0.1}, {"lr": 0.4}, lambda ps: sgd(ps, lr=0.1), None)],
                      hint, stateful=False)
    for model_name, factory in MODELS.items():
        mine, _, _ = student_run(GD, "GD", factory, {"lr": 0.2}, 6, model_name)
        check_close(mine, _gd_formula(factory, 0.2, 6), "the GD trajectory against the formula", rtol=1e-6, atol=1e-9,
                    hint=hint)


@single_thread
def test_sgdwm(SGDwM) -> None:
    hint = "The sheet says: v <- momentum * v + g (v starts at 0), then p <- p - lr * v; one v per parameter."
    sgd = torch.optim.SGD
    compare_with_twin(SGDwM, "SGDwM", [
        ({"lr": 0.1, "momentum": 0.9}, None, lambda ps: sgd(ps, lr=0.1, momentum=0.9), None),
        ({"lr": 0.05}, None, lambda ps: sgd(ps, lr=0.05, momentum=0.9), None),
        ({"lr": 0.1, "momentum": 0.9}, {"lr": 0.3, "momentum": 0.5}, lambda ps: sgd(ps, lr=0.1, momentum=0.9), None)],
        hint)


@single_thread
def test_nagd(NAGD) -> None:
    hint = ("The sheet says: v <- momentum * v + g, then p <- p - lr * (g + momentum * v), with the new v; "
            "one v per parameter.")
    sgd = functools.partial(torch.optim.SGD, nesterov=True)
    compare_with_twin(NAGD, "NAGD", [
        ({"lr": 0.1, "momentum": 0.9}, None, lambda ps: sgd(ps, lr=0.1, momentum=0.9), None),
        ({"lr": 0.05}, None, lambda ps: sgd(ps, lr=0.05, momentum=0.9), None),
        ({"lr": 0.1, "momentum": 0.9}, {"lr": 0.3, "momentum": 0.5}, lambda ps: sgd(ps, lr=0.1, momentum=0.9), None)],
        hint)


def _decay(d):
    return lambda t: 1.0 / (1.0 + d * t)


@single_thread
def test_sgdwmld(SGDwMLD) -> None:
    hint = ("The sheet says: step t = 0, 1, 2, ... (counted once per call of step(), not per group, parameter or "
            "epoch) uses lr_t = lr / (1 + decay * t): v <- momentum * v + g, then p <- p - lr_t * v.")
    sgd = torch.optim.SGD
    compare_with_twin(SGDwMLD, "SGDwMLD", [
        ({"lr": 0.2, "momentum": 0.9, "decay": 0.3}, None, lambda ps: sgd(ps, lr=0.2, momentum=0.9), _decay(0.3)),
        ({"lr": 0.1}, None, lambda ps: sgd(ps, lr=0.1, momentum=0.9), _decay(0.01)),
        ({"lr": 0.4, "momentum": 0.5, "decay": 1.0}, {"lr": 0.1, "momentum": 0.8, "decay": 0.05},
         lambda ps: sgd(ps, lr=0.4, momentum=0.5), [_decay(0.05), _decay(1.0)])], hint)


@single_thread
def test_adagrad(AdaGrad) -> None:
    hint = "The sheet says: G <- G + g**2 (G starts at 0), then p <- p - lr * g / (sqrt(G) + eps), eps outside the root."
    adagrad = torch.optim.Adagrad
    compare_with_twin(AdaGrad, "AdaGrad", [
        ({"lr": 0.1, "eps": 0.1}, None, lambda ps: adagrad(ps, lr=0.1, eps=0.1), None),
        ({}, None, lambda ps: adagrad(ps, lr=0.01, eps=1e-10), None),
        ({"lr": 0.5, "eps": 1e-10}, {"lr": 0.3, "eps": 1.0}, lambda ps: adagrad(ps, lr=0.5, eps=1e-10), None)], hint)


@single_thread
def test_rmsprob(RMSProb) -> None:
    hint = ("The sheet says: V <- alpha * V + (1 - alpha) * g**2 first (V starts at 0), then "
            "p <- p - lr * g / (sqrt(V) + eps) with the new V, eps outside the root.")
    rmsprop = torch.optim.RMSprop
    compare_with_twin(RMSProb, "RMSProb", [
        ({"lr": 0.01, "alpha": 0.9, "eps": 0.1}, None, lambda ps: rmsprop(ps, lr=0.01, alpha=0.9, eps=0.1), None),
        ({}, None, lambda ps: rmsprop(ps, lr=0.01, alpha=0.99, eps=1e-8), None),
        ({"lr": 0.05, "alpha": 0.5, "eps": 1e-8}, {"lr": 0.02, "alpha": 0.99, "eps": 1.0},
         lambda ps: rmsprop(ps, lr=0.05, alpha=0.5, eps=1e-8), None)], hint)


@single_thread
def test_adam(Adam) -> None:
    hint = ("The sheet says: t counts the optimizer's steps; m and v start at 0; correct both by 1 - beta**t; "
            "add eps after the square root.")
    adam = torch.optim.Adam
    compare_with_twin(Adam, "Adam", [
        ({"lr": 0.1, "betas": (0.8, 0.99), "eps": 0.1}, None, lambda ps: adam(ps, lr=0.1, betas=(0.8, 0.99), eps=0.1),
         None),
        ({}, None, lambda ps: adam(ps), None),
        ({"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8}, {"lr": 0.02, "betas": (0.5, 0.9), "eps": 1.0},
         lambda ps: adam(ps, lr=0.05), None)], hint)


# ---- reference versions of every exercise (installed by references_before) -------------------

def _reference_data(ns) -> dict:
    from utils.mnist import TensorLoader

    first = own_first(ns.get("STUDENT_ID", ""))
    images = (ns["train_images"][first:first + SUBSET] - MNIST_MEAN) / MNIST_STD
    labels = ns["train_labels"][first:first + SUBSET]
    return {"subset_images": images, "subset_labels": labels,
            "full_batch_loader": TensorLoader(images, labels, batch_size=SUBSET),
            "mini_batch_loader": TensorLoader(images, labels, batch_size=64, shuffle=True,
                                              generator=ns["loader_generator"])}


def _reference_one_fc_net(ns):
    def get_OneFCNet():
        return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).to(ns["device"])

    return {"get_OneFCNet": get_OneFCNet}


def reference_training_step(model, optimizer, loss_fn, images, labels):
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def reference_evaluate(model, loader, loss_fn, **_ignored):
    device = next(model.parameters()).device
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            total += loss_fn(model(x), y).item() * len(y)
            n += len(y)
    return total / n


def _copy_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def reference_loop(model, optimizer, train_loader, val_loader, n_epochs, loss_fn, swa_model=None, swa_start=0,
                   **_ignored):
    from utils import progress

    device = next(model.parameters()).device
    losses, val_losses, states = [], [], [_copy_state(model)]
    for epoch in progress(range(n_epochs), "epochs"):
        model.train()
        for x, y in train_loader:
            losses.append(reference_training_step(model, optimizer, loss_fn, x.to(device), y.to(device)))
            states.append(_copy_state(model))
        if swa_model is not None and epoch >= swa_start:
            swa_model.update_parameters(model)
        val_losses.append(reference_evaluate(model, val_loader, loss_fn))
    return losses, val_losses, states


def reference_plot_landscape(model, states, data, title, resolution=15):
    from plot_loss import get_loss_grid, get_state_directions, plot_contour, plot_surface

    pca = get_state_directions(states, n_states=None)
    grid = get_loss_grid(model, data, nn.CrossEntropyLoss(), pca, resolution, pca.grid_range())
    return plot_contour(grid, pca, title=title), plot_surface(grid, pca, title=title)


def reference_train_with_swa(model, optimizer, train_loader, val_loader, n_epochs, swa_start, loss_fn):
    from torch.optim.swa_utils import AveragedModel

    swa_model = AveragedModel(model)
    losses, val_losses, states = reference_loop(model, optimizer, train_loader, val_loader, n_epochs, loss_fn,
                                                swa_model=swa_model, swa_start=swa_start)
    return swa_model, reference_evaluate(swa_model, val_loader, loss_fn), losses, val_losses, states


class ReferenceGD(torch.optim.SGD):
    def __init__(self, params, lr):
        super().__init__(params, lr=lr)


class ReferenceSGDwM(torch.optim.SGD):
    def __init__(self, params, lr, momentum=0.9):
        super().__init__(params, lr=lr, momentum=momentum)


class ReferenceNAGD(torch.optim.SGD):
    def __init__(self, params, lr, momentum=0.9):
        super().__init__(params, lr=lr, momentum=momentum, nesterov=True)


class ReferenceSGDwMLD(torch.optim.SGD):
    """torch.optim.SGD with momentum whose every group's rate is set to lr / (1 + decay * t) before step t."""

    def __init__(self, params, lr, momentum=0.9, decay=0.01):
        super().__init__(params, lr=lr, momentum=momentum)
        for group in self.param_groups:
            group.setdefault("decay", decay)
            group["lr0"] = group["lr"]
        self.steps_taken = 0

    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] = group["lr0"] / (1 + group["decay"] * self.steps_taken)
        self.steps_taken += 1
        return super().step(closure)


class ReferenceAdaGrad(torch.optim.Adagrad):
    def __init__(self, params, lr=0.01, eps=1e-10):
        super().__init__(params, lr=lr, eps=eps)


class ReferenceRMSProb(torch.optim.RMSprop):
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps)


class ReferenceAdam(torch.optim.Adam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps)


TUNING_REFERENCES = {"SGDwMLD": ReferenceSGDwMLD, "AdaGrad": ReferenceAdaGrad, "RMSProb": ReferenceRMSProb,
                     "Adam": ReferenceAdam}

# exercise -> what its reference puts into the namespace (a function of the namespace), in the sheet's order
REFERENCES = {
    "0": _reference_data,
    "1.1": _reference_one_fc_net,
    "1.2": lambda ns: {"GD": ReferenceGD},
    "1.3": lambda ns: {"training_step": reference_training_step},
    "1.4": lambda ns: {"evaluate": reference_evaluate, "the_loop": reference_loop},
    "1.5": lambda ns: {"plot_landscape": reference_plot_landscape},
    "2.1": lambda ns: {"SGDwM": ReferenceSGDwM},
    "2.2": lambda ns: {"NAGD": ReferenceNAGD},
    "2.3": lambda ns: {"SGDwMLD": ReferenceSGDwMLD},
    "2.4": lambda ns: {"AdaGrad": ReferenceAdaGrad},
    "2.5": lambda ns: {"RMSProb": ReferenceRMSProb},
    "2.6": lambda ns: {"Adam": ReferenceAdam},
    "3.1": lambda ns: {"train_with_swa": reference_train_with_swa},
    "bonus": lambda ns: {},
}


def references_before(exercise: str, namespace: dict) -> None:
    """Put reference versions of every exercise before ``exercise`` into the notebook's namespace.

    Called at the top of each test cell (in its hidden part), so that this cell's visible and
    hidden checks, and every later cell, use references for earlier work: a slip in one
    exercise costs its own cell only. It runs where hidden tests run (grading, the instructor
    notebook, the mutation suite), never in a student's own session."""
    order = list(REFERENCES)
    if exercise not in order:
        raise ValueError(f"unknown exercise {exercise!r}; one of {order}")
    torch.set_grad_enabled(True)  # an earlier cell that switched autograd off for good costs its own cell only
    for earlier in order[:order.index(exercise)]:
        namespace.update(REFERENCES[earlier](namespace))


# ---- Part 0 and 1 ----------------------------------------------------------------------------

def _fingerprint(images):
    """One number per image (a fixed weighted sum of its pixels): compares batches in any order."""
    x = torch.as_tensor(images).detach().cpu().double().reshape(len(images), -1)
    return x @ torch.linspace(1, 2, x.shape[1], dtype=torch.float64)


def _epoch(loader):
    return [(x.detach().cpu(), y.detach().cpu()) for x, y in call(lambda: list(loader), "iterating over the loader")]


def _same_samples(batch_images, batch_labels, images, labels) -> bool:
    """True if the batch holds exactly the (image, label) pairs of ``images, labels``, in any order."""
    mine, ref = _fingerprint(batch_images), _fingerprint(images)
    if mine.shape != ref.shape:
        return False
    a, b = mine.argsort(), ref.argsort()
    return (torch.allclose(mine[a], ref[b], rtol=1e-5, atol=1e-4)
            and torch.equal(torch.as_tensor(batch_labels).cpu()[a], torch.as_tensor(labels).cpu()[b]))


@single_thread
def test_data(subset_images, subset_labels, full_batch_loader, mini_batch_loader, train_set, loader_generator,
              student_id="") -> None:
    """0: the normalised subset of 50 batches of 64 from the student's own first digit, the
    full-batch loader (any order) and the shuffled mini-batch loader driven by ``loader_generator``."""
    from utils.mnist import TensorLoader, as_tensors

    images, labels = as_tensors(train_set)
    first = own_first(student_id)
    expected, expected_labels = (images[first:first + SUBSET] - MNIST_MEAN) / MNIST_STD, labels[first:first + SUBSET]
    check_tensor(subset_images, "subset_images", shape=(SUBSET, 1, 28, 28))
    _not_the_default_subset(subset_images, images, first)
    check_close(subset_images, expected, "subset_images",
                hint="The sheet says: the 50 * 64 training digits from your own index FIRST on, normalised: "
                     "(x - 0.1307) / 0.3081.")
    assert torch.equal(torch.as_tensor(subset_labels).cpu(), expected_labels), (
        "subset_labels should be the labels of your own 3,200 training digits (from FIRST on), in the order of "
        "subset_images")
    full = _epoch(full_batch_loader)
    assert len(full) == 1, "the sheet says: full_batch_loader yields the whole subset as one batch"
    assert _same_samples(*full[0], expected, expected_labels), (
        "the one batch of full_batch_loader should hold every digit of the subset with its label (in any order)")
    saved = loader_generator.get_state()
    epochs, references = [], []
    try:
        for seed in (11, 12):
            loader_generator.manual_seed(seed)
            epochs.append(_epoch(mini_batch_loader))
            loader_generator.manual_seed(seed)
            references.append(list(TensorLoader(expected, expected_labels, batch_size=64, shuffle=True,
                                                generator=loader_generator)))
    finally:
        loader_generator.set_state(saved)  # the notebook goes on as if the test had not drawn from it
    for epoch in epochs:
        assert [len(x) for x, _ in epoch] == [64] * 50, "the sheet says: mini_batch_loader yields 50 batches of 64"
        assert _same_samples(torch.cat([x for x, _ in epoch]), torch.cat([y for _, y in epoch]), expected,
                             expected_labels), (
            "every epoch of mini_batch_loader should visit each digit of the subset once, with its label")
    assert not torch.equal(_fingerprint(epochs[0][0][0]), _fingerprint(epochs[1][0][0])), (
        "the sheet says: the mini-batch loader shuffles (shuffle=True)")
    for epoch, reference in zip(epochs, references):
        assert all(_same_samples(x, y, xr, yr) for (x, y), (xr, yr) in zip(epoch, reference)), (
            "the sheet says: mini_batch_loader shuffles with generator=loader_generator; its order does not follow "
            "that generator")


def _not_the_default_subset(subset_images, images, first: int) -> None:
    """A subset of the default digits (the first 3,200) where the student's own start elsewhere:
    the one message that says so (the student kept the default numbers instead of FIRST)."""
    default = DEFAULTS["landscape"].first
    if first == default:
        return
    mine = torch.as_tensor(subset_images).detach().cpu().double()
    for normalised in (True, False):
        kept = images[default:default + SUBSET].double()
        kept = (kept - MNIST_MEAN) / MNIST_STD if normalised else kept
        if torch.allclose(mine, kept, rtol=1e-5, atol=1e-4):
            raise AssertionError("the sheet says: take the 3,200 digits from your own index FIRST on, which comes "
                                 "from your student id; subset_images holds the first 3,200 training digits instead")


@single_thread
def test_one_fc_net(get_OneFCNet) -> None:
    """1.1: Flatten + Linear(784, 10), a new model per call, on the notebook's `device`."""
    namespace = get_OneFCNet.__globals__
    saved = {k: namespace[k] for k in ("device", "get_device") if k in namespace}
    meta = torch.device("meta")
    namespace["device"] = meta
    if "get_device" in namespace:
        namespace["get_device"] = lambda: meta
    try:
        moved = call(get_OneFCNet, "get_OneFCNet()")
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
    assert not any(p is q for p in a.parameters() for q in b.parameters()), (
        "the sheet says: get_OneFCNet returns a new model; two calls share a layer")
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())), (
        "every call should build a new model with its own random initialisation")
    weight = next(p for p in params if p.dim() == 2)
    bias = next(p for p in params if p.dim() == 1)
    x = torch.randn(5, 1, 28, 28, device=weight.device)
    with torch.no_grad():
        out = a(x)
        expected = x.reshape(5, -1) @ weight.T + bias
    check_close(out, expected, "OneFCNet's output", hint="Flatten the image, then one Linear layer, nothing after it.")


@single_thread
def test_training_step(training_step) -> None:
    """1.3: one optimizer step per call, gradients reset, the loss before the step as a float."""
    for name, factory in MODELS.items():
        for make in (lambda ps: torch.optim.SGD(ps, lr=0.2), lambda ps: torch.optim.Adam(ps, lr=0.05)):
            results = []
            for step in (training_step, reference_training_step):
                model = make_model(factory)
                optimizer = make(model.parameters())
                with no_other_optimizer(None, "one optimizer step per call, with the optimizer passed in"), \
                        counting_steps(optimizer) as taken:
                    losses = [call(step, "training_step", model, optimizer, nn.CrossEntropyLoss(), x, y)
                              for x, y in batches(6)]
                check_gradients_on("training_step")
                results.append((losses, _flat(model), len(taken)))
            (mine, theta, steps), (ref, ref_theta, _) = results
            assert all(isinstance(v, float) for v in mine), (
                "the sheet says: training_step returns the loss as a Python float (loss.item())")
            assert steps == len(mine), (
                f"the sheet says: one optimizer.step() per call of training_step; {len(mine)} calls took {steps} steps")
            check_close(mine, ref, f"the losses returned by training_step on {name}",
                        hint="Return the loss of the batch computed before the step.")
            check_close(theta, ref_theta, f"the parameters after 6 calls of training_step on {name}",
                        hint="Reset the gradients (optimizer.zero_grad()) before every backward(): backward() adds to .grad.")


class Spy(nn.Module):
    """A small net with batch norm (buffers) and dropout whose forward records (batch size,
    training mode, gradients on)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.norm, self.drop, self.fc2 = nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Dropout(0.3), nn.Linear(5, 3)
        self.calls = []

    def forward(self, x):
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        return self.fc2(self.drop(torch.tanh(self.norm(self.fc1(x.flatten(1))))))


TRAIN_BATCH = 8


def _loop_data():
    """Loaders of the test's own (TensorLoaders, with .dataset): 3 training batches of 8 and
    validation batches of 5, 5 and 2 (a partial last batch)."""
    from utils.mnist import TensorLoader

    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(24, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (24,), generator=g)
    vx, vy = torch.randn(12, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (12,), generator=g)
    return TensorLoader(x, y, batch_size=TRAIN_BATCH), TensorLoader(vx, vy, batch_size=5)


def _spy_setup():
    torch.manual_seed(0)
    model = Spy().double()
    return model, torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5)


@single_thread
def test_evaluate(evaluate) -> None:
    _, val = _loop_data()
    model, _ = _spy_setup()
    model.train()
    value = call(evaluate, "evaluate", model, val, nn.CrossEntropyLoss())
    check_gradients_on("evaluate")
    assert isinstance(value, float), "the sheet says: evaluate returns a Python float"
    assert model.calls and all(not training for _, training, _ in model.calls), (
        "the sheet says: evaluate puts the model in evaluation mode (model.eval()): dropout was still on")
    assert all(not grad for _, _, grad in model.calls), (
        "the sheet says: evaluate computes without gradients (with torch.no_grad():)")
    check_close(value, reference_evaluate(model, val, nn.CrossEntropyLoss()), "evaluate's loss",
                hint="Average over samples, not batches: the last batch may be smaller (weight each batch by its size).")


def _check_states(states, ref_states):
    for k, (state, ref) in enumerate(zip(states, ref_states)):
        assert isinstance(state, dict) and set(state) == set(ref), (
            "every entry of states should be a copy of the whole model.state_dict(), buffers (batch norm's running "
            "statistics) included")
        for name in ref:
            value = state[name]
            assert not (isinstance(value, torch.Tensor) and value.requires_grad), (
                f"states[{k}][{name!r}] still tracks gradients: save value.detach().clone() of model.state_dict()")
            check_close(value, ref[name], f"states[{k}][{name!r}]",
                        hint="Save a copy after every step: {k: v.detach().clone() for k, v in model.state_dict().items()}; "
                             "state_dict() returns references that later steps overwrite.")


def _run_loop(loop, n_epochs, swa_start=None):
    """The loop on the spy model, with a SWA model; (output, model, swa model, steps taken)."""
    from torch.optim.swa_utils import AveragedModel

    train, val = _loop_data()
    model, optimizer = _spy_setup()
    swa = AveragedModel(model)
    extra = {} if swa_start is None else {"swa_start": swa_start}
    with no_other_optimizer(None, "train with the optimizer passed to the_loop"), counting_steps(optimizer) as taken:
        out = call(loop, "the_loop", model, optimizer, train, val, n_epochs=n_epochs, loss_fn=nn.CrossEntropyLoss(),
                   swa_model=swa, **extra)
    check_gradients_on("the_loop")
    return out, model, swa, len(taken)


@single_thread
def test_the_loop(the_loop, evaluate) -> None:
    """1.4: the_loop (with the reference training_step) against the reference loop."""
    test_evaluate(evaluate)
    with using(the_loop, training_step=reference_training_step):
        mine, model, swa, steps = _run_loop(the_loop, 3, swa_start=1)
    (ref_losses, ref_val, ref_states), ref_model, ref_swa, _ = _run_loop(reference_loop, 3, swa_start=1)
    n_batches = 3 * 3
    assert isinstance(mine, tuple) and len(mine) == 3, "the sheet says: the_loop returns (losses, val_losses, states)"
    losses, val_losses, states = mine
    assert isinstance(losses, list) and len(losses) == n_batches and all(isinstance(v, float) for v in losses), (
        "the sheet says: losses holds one Python float per step, in order")
    assert steps == n_batches, (
        f"the sheet says: one training_step per batch, with the optimizer passed in: {n_batches} batches took "
        f"{steps} optimizer steps")
    assert isinstance(val_losses, list) and len(val_losses) == 3, "the sheet says: val_losses holds one loss per epoch"
    assert isinstance(states, list) and len(states) == n_batches + 1, (
        "the sheet says: states holds the state before training and after every step")
    val_calls = [(training, grad) for size, training, grad in model.calls if size != TRAIN_BATCH]
    assert val_calls and all(not training for training, _ in val_calls), (
        "the sheet says: validate in evaluation mode (model.eval()); dropout was on during validation")
    assert all(not grad for _, grad in val_calls), "the sheet says: validate without gradients (torch.no_grad())"
    train_calls = [training for size, training, _ in model.calls if size == TRAIN_BATCH]
    assert all(train_calls), "the sheet says: train in training mode: call model.train() at the start of every epoch"
    _check_states(states, ref_states)
    check_close(losses, ref_losses, "the losses of the_loop",
                hint="One training_step per batch of train_loader (the loader passed in), in order.")
    check_close(val_losses, ref_val, "the validation losses of the_loop",
                hint="evaluate on val_loader after every epoch, averaged over samples.")
    assert int(swa.n_averaged) == int(ref_swa.n_averaged), (
        f"the sheet says: update the SWA model at the end of every epoch from epoch swa_start on (epochs counted "
        f"from 0); with swa_start=1 it averaged {int(swa.n_averaged)} times in 3 epochs")
    for (name, p), q in zip(swa.module.named_parameters(), ref_swa.module.parameters()):
        check_close(p, q, f"the SWA model's {name}", hint="Update it at the end of the epoch, after the epoch's last step.")
    # By default (swa_start=0) every epoch is averaged; without a SWA model the loop runs too.
    with using(the_loop, training_step=reference_training_step):
        _, _, swa, _ = _run_loop(the_loop, 2)
        assert int(swa.n_averaged) == 2, (
            "the sheet says: swa_start=0 by default, so that a SWA model averages the model after every epoch")
        train, val = _loop_data()
        plain, optimizer = _spy_setup()
        call(the_loop, "the_loop without swa_model", plain, optimizer, train, val, n_epochs=1,
             loss_fn=nn.CrossEntropyLoss())


# ---- the landscape ---------------------------------------------------------------------------

def _trace(fig, kind):
    return [t for t in fig.data if t.type == kind]


def _title(fig) -> str:
    title = fig.layout.title
    return (title.text or "") if title is not None else ""


@single_thread
def test_plot_landscape(plot_landscape) -> None:
    """1.5: the two figures of plot_contour and plot_surface on the sheet's grid, titled."""
    import plotly.graph_objects as go

    from plot_loss import get_loss_grid, get_state_directions

    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.5)
    states = [{k: v.clone() for k, v in model.state_dict().items()}]
    for i in range(12):
        reference_training_step(model, optimizer, nn.CrossEntropyLoss(), x[i % 4 * 10:(i % 4 + 1) * 10],
                                y[i % 4 * 10:(i % 4 + 1) * 10])
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    title = "SGD on a tiny model (a title of the test's own)"
    out = call(plot_landscape, "plot_landscape", model, states, (x, y), title=title, resolution=7)
    check_gradients_on("plot_landscape")
    assert isinstance(out, tuple) and len(out) == 2, "the sheet says: plot_landscape returns (fig_contour, fig_surface)"
    fig_contour, fig_surface = out
    assert isinstance(fig_contour, go.Figure) and isinstance(fig_surface, go.Figure), (
        "plot_landscape should return the two plotly figures of plot_contour and plot_surface")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), "plot_landscape changed the model's parameters: it must leave the model as it was"
    for which, fig in (("fig_contour", fig_contour), ("fig_surface", fig_surface)):
        assert title in _title(fig), (
            f"the sheet says: both figures carry the title passed to plot_landscape; {which} does not "
            "(pass title=title to plot_contour and plot_surface)")
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


# ---- Part 3: SWA -------------------------------------------------------------------------------

@single_thread
def test_swa(train_with_swa) -> None:
    """3.1: an AveragedModel created before training, averaged by the_loop from swa_start on,
    evaluated with evaluate; run with the reference the_loop and evaluate."""
    from torch.optim.swa_utils import AveragedModel

    results = []
    for func in (train_with_swa, reference_train_with_swa):
        train, val = _loop_data()
        model, optimizer = _spy_setup()
        references = {} if func is reference_train_with_swa else dict(
            the_loop=reference_loop, evaluate=reference_evaluate, training_step=reference_training_step)
        with using(func, **references), \
                no_other_optimizer(None, "train with the optimizer passed to train_with_swa"), \
                counting_steps(optimizer) as taken:
            out = call(func, "train_with_swa", model, optimizer, train, val, n_epochs=3, swa_start=1,
                       loss_fn=nn.CrossEntropyLoss())
        check_gradients_on("train_with_swa")
        results.append((out, model, len(taken)))
    (mine, model, steps), (ref, ref_model, ref_steps) = results
    assert isinstance(mine, tuple) and len(mine) == 5, (
        "the sheet says: train_with_swa returns (swa_model, swa_val_loss, losses, val_losses, states)")
    swa_model, swa_val_loss, losses, val_losses, states = mine
    ref_swa, ref_val_loss, ref_losses, ref_val_losses, ref_states = ref
    assert isinstance(swa_model, AveragedModel), "swa_model should be a torch.optim.swa_utils.AveragedModel"
    assert steps == ref_steps, (
        f"the sheet says: train the model passed in once, with the_loop and the optimizer passed in: its optimizer "
        f"took {steps} steps for {ref_steps} batches")
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        check_close(p, q, f"the trained model's {name}",
                    hint="Train the model passed in with the_loop(model, optimizer, train_loader, val_loader, n_epochs, "
                         "loss_fn, swa_model=swa_model, swa_start=swa_start).")
    assert int(swa_model.n_averaged) == int(ref_swa.n_averaged), (
        "the sheet says: the_loop averages the model at the end of every epoch from swa_start on: pass swa_start to "
        f"the_loop; swa_model averaged {int(swa_model.n_averaged)} models")
    for (name, p), q in zip(swa_model.module.named_parameters(), ref_swa.module.parameters()):
        check_close(p, q, f"swa_model's {name}",
                    hint="Create swa_model = AveragedModel(model) before training and let the_loop average it.")
    check_close([len(losses), len(val_losses), len(states)], [len(ref_losses), len(ref_val_losses), len(ref_states)],
                "the lengths of losses, val_losses and states", hint="Return what the_loop returned.")
    check_close(losses, ref_losses, "the losses returned by train_with_swa", hint="Return what the_loop returned.")
    assert isinstance(swa_val_loss, float), "swa_val_loss should be a Python float (evaluate returns one)"
    check_close(swa_val_loss, ref_val_loss, "swa_val_loss",
                hint="The validation loss of the averaged model: evaluate(swa_model, val_loader, loss_fn).")


# ---- Bonus -------------------------------------------------------------------------------------

def test_tuning_claim(tuning_accuracies, tuning_log, name, settings, claimed_test_accuracy, baseline_accuracy) -> None:
    """The claim against the log of tuning_run, then re-run with the reference optimizer (through
    the notebook's provided ``tuning_accuracies``, which takes an optimizer factory)."""
    assert name in TUNING_REFERENCES, f"best_optimizer should be one of {sorted(TUNING_REFERENCES)}, not {name!r}"
    assert isinstance(settings, dict), "best_settings should be a dict of keyword arguments"
    cls = TUNING_REFERENCES[name]
    try:
        cls([nn.Parameter(torch.zeros(1))], **settings)
    except (TypeError, ValueError):
        raise AssertionError(f"best_settings are not valid keyword arguments of {name}: the sheet fixes its "
                             "signature") from None
    assert isinstance(claimed_test_accuracy, float), "best_test_accuracy should be a Python float"
    runs = [r for r in tuning_log if r["optimizer"] == name and r["settings"] == settings]
    assert runs, "the sheet says: run every configuration with tuning_run; yours is not among the runs in tuning_log"
    assert runs[-1]["validation"] >= max(r["validation"] for r in tuning_log), (
        "the sheet says: choose the configuration with the best validation accuracy; another configuration you "
        "ran with tuning_run has a higher one")
    assert abs(claimed_test_accuracy - runs[-1]["test"]) <= 1e-4, (
        "the sheet says: best_test_accuracy is the test accuracy of your configuration (the second number "
        "tuning_run returns)")
    _, test_accuracy = tuning_accuracies(lambda params: cls(params, **settings))
    assert abs(test_accuracy - runs[-1]["test"]) <= 1e-6, (
        f"with the reference {name}, your configuration does not reach the test accuracy you claim: is "
        f"TUNING_OPTIMIZERS[{name!r}] the class the sheet asks for?")
    assert test_accuracy >= baseline_accuracy + 0.01, (
        "the sheet says: your configuration beats the baseline's test accuracy by at least one percentage point")
