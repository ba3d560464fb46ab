"""What the hidden tests of every assignment share, written once; each helper says where it is used.

* **rules on values**: Python floats, tensors that no longer track gradients, saved copies of a
  model's state, exact classes (``type(x) is``: ``AdamW`` subclasses ``Adam`` but is not it);
* **the student's code**: errors become advice; the notebook's namespace; reference versions of
  earlier exercises put in place while a later one runs (``using``), and left there when a test
  fails (``fallback``), so that one slip costs one cell;
* **trajectories next to a twin**: the reference loop (``trajectory``) runs the student's optimizer
  and its twin (``torch.optim``, a formula) from the same start, and whole trajectories are compared;
* **spies**: optimizers created, optimizer steps per model, autograd calls, the gradient switch;
* **a fixture** of a model with parameters of several shapes and a frozen one, in two parameter
  groups (``fixture_model``, ``two_groups``): state kept once for all parameters, settings read
  from ``self`` instead of the group, a step counter per group, a missing ``p.grad is None`` check
  all show on it;
* **figure data**: curves and bars however drawn, legends of a panel and of the whole figure
  matched to what they label, titles.

Contract of every ``check_*``: it raises AssertionError with a message that quotes the sheet's rule
(handed in by the caller) and never holds an expected value.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from utils.checks import check_close, check_tensor
from utils.figures import main_axes, shows_curve

__all__ = [
    "Bar", "LegendEntry", "Steps", "autograd_calls", "bars", "call", "check_defined", "check_detached",
    "check_exact_class", "check_float", "check_floats", "check_gradients_on", "check_state_copy",
    "compare_trajectories", "curves", "fallback", "fixture_model", "flat", "is_float", "legend_entries",
    "namespace_of", "no_optimizer_created", "optimizer_steps", "optimizers_created", "shows_curve", "single_thread",
    "style_of", "titles", "trajectory", "two_groups", "using",
]


# ---- rules on values -----------------------------------------------------------------------------


def is_float(value) -> bool:
    """A Python float (or NumPy's float64, a float subclass); not a tensor, a 0-d array or a bool.
    Used in: autodiff 1.5, 2.x; mnist 2a."""
    return isinstance(value, float)


def check_float(value, name: str, rule: str) -> None:
    """Used in: mnist 3a."""
    assert is_float(value), f"the sheet says: {rule}; {name} is a {type(value).__name__}: use .item()"


def check_floats(values, name: str, rule: str) -> list[float]:
    """A list (or tuple) of Python floats, such as losses from ``loss.item()``.
    Used in: autodiff 2.1, 2.3; mnist 2a."""
    assert isinstance(values, (list, tuple)), (
        f"the sheet says: {rule}, in a list. {name} should be a list, but it is a {type(values).__name__}")
    bad = next((v for v in values if not is_float(v)), None)
    assert bad is None, f"the sheet says: {rule}. {name} holds a {type(bad).__name__}: use loss.item()"
    return list(values)


def check_detached(tensor, name: str, rule: str) -> None:
    """A tensor that tracks no gradients (``.detach()``). Used in: autodiff 1.2, 2.1, 2.5."""
    assert isinstance(tensor, torch.Tensor), f"{name} should be a tensor, but it is a {type(tensor).__name__}"
    assert not tensor.requires_grad and tensor.grad_fn is None, (
        f"the sheet says: {rule}. {name} still tracks gradients: return it with .detach()")


def check_state_copy(saved, model: nn.Module, name: str, rule: str) -> None:
    """A copy of ``model.state_dict()``: every entry (buffers too), detached, in memory of its own,
    so that later steps do not change it. Used in: landscape (the states the loop saves)."""
    live = model.state_dict()
    assert isinstance(saved, dict) and set(saved) == set(live), (
        f"the sheet says: {rule}. {name} should hold every entry of model.state_dict(), buffers included")
    for key, value in saved.items():
        assert isinstance(value, torch.Tensor), f"the sheet says: {rule}. {name}[{key!r}] is not a tensor"
        assert not value.requires_grad, f"the sheet says: {rule}. {name}[{key!r}] still tracks gradients: detach it"
        shares = value.numel() and value.untyped_storage().data_ptr() == live[key].untyped_storage().data_ptr()
        assert not shares, (
            f"the sheet says: {rule}. {name}[{key!r}] shares memory with the model, so later steps change it: "
            "save a copy (.clone())")


def check_defined(value, name: str, where: str) -> None:
    """A name the notebook should have defined (the test cell hands it in with ``globals().get``, so
    that a cell that raised still reaches the test, and its fallback). Used in: autodiff, mnist."""
    assert value is not None, f"{name} is not defined: run the cell of {where} again (did it raise an error?)"


def check_exact_class(value, cls: type, name: str, rule: str) -> None:
    """``type(value) is cls``: a subclass (``AdamW`` of ``Adam``) is another thing.
    Used in: mnist 1b, 2b."""
    assert type(value) is cls, (
        f"the sheet says: {rule}. {name} is a {type(value).__module__}.{type(value).__qualname__}, "
        f"not a {cls.__module__}.{cls.__qualname__} itself")


# ---- the student's code --------------------------------------------------------------------------


def call(what: str, function, *args, advice: str = "", **kwargs):
    """Call the student's code; an error becomes an AssertionError that says what to look at.
    Used in: autodiff 1.x, 2.x; rosenbrock A.3, C.1; mnist."""
    assert callable(function), f"{what} should be a function, but it is a {type(function).__name__}"
    try:
        return function(*args, **kwargs)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the student's code is reported
        raise AssertionError(f"{what} raised {type(exc).__name__} ({exc}). {advice}".strip()) from None


def namespace_of(obj) -> dict:
    """The global namespace the student's function or class was defined in (the notebook's).
    Used in: rosenbrock, mnist (through ``using``)."""
    if hasattr(obj, "__globals__"):
        return obj.__globals__
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        for member in vars(klass).values():
            member = getattr(member, "__func__", member)
            if hasattr(member, "__globals__") and member.__module__ == cls.__module__:
                return member.__globals__
    return {}


@contextlib.contextmanager
def using(obj, **references):
    """Run ``obj`` with reference versions of earlier exercises in place of the student's (under the
    same names in its namespace), so that a slip there costs its own cell only.
    Used in: rosenbrock A.4, B.3; mnist 2b; landscape (the loop, SWA)."""
    namespace = namespace_of(obj)
    saved = {name: namespace[name] for name in references if name in namespace}
    namespace.update(references)
    try:
        yield
    finally:
        for name in references:
            if name in saved:
                namespace[name] = saved[name]
            else:
                namespace.pop(name, None)


@contextlib.contextmanager
def fallback(namespace: dict | None, references: dict | Callable[[], dict]):
    """On any failure inside, put the reference versions (a dict, or a function that makes it) in the
    notebook's namespace, then re-raise: every later cell, the student's own included, goes on with
    a correct one. Used in: rosenbrock (functions of A, B, C); mnist 1a, 2a, 2b, 3a, 3b."""
    try:
        yield
    except Exception:
        if namespace is not None:
            namespace.update(references() if callable(references) else references)
        raise


def single_thread(test):
    """Run a test on one CPU thread: its models are tiny, and on a busy machine the thread pool's
    synchronisation costs more than the arithmetic (measured: 10x on a loaded 2-core CPU).
    Used in: landscape, mnist."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return test(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


# ---- trajectories next to a twin ----------------------------------------------------------------


def _tensors(params) -> list[torch.Tensor]:
    """The parameter tensors of a list of tensors or of parameter groups (dicts with "params")."""
    out = []
    for entry in params:
        out += list(entry["params"]) if isinstance(entry, dict) else [entry]
    return out


def flat(params) -> torch.Tensor:
    """Every parameter (of tensors, groups or a model) flattened into one detached row.
    Used in: optimizers, landscape, mnist."""
    params = params.parameters() if isinstance(params, nn.Module) else params
    return torch.cat([p.detach().reshape(-1).clone() for p in _tensors(list(params))])


def trajectory(make_optimizer, params, loss: Callable[[int], torch.Tensor], steps: int, schedule=None):
    """The reference loop: ``steps`` times zero_grad, ``loss(k).backward()``, step (then the
    scheduler's step, if a ``LambdaLR`` factor ``schedule`` is given). ``params`` (tensors or
    parameter groups) is handed to ``make_optimizer`` as it is. Returns (rows, optimizer): row k
    holds every parameter after k steps, flattened. Used in: optimizers 1.1, 2.x; landscape."""
    optimizer = make_optimizer(params)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule) if schedule else None
    rows = [flat(params)]
    for k in range(steps):
        optimizer.zero_grad()
        loss(k).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        rows.append(flat(params))
    return torch.stack(rows), optimizer


def compare_trajectories(mine, reference, name: str, hint: str, **tolerances) -> None:
    """Whole trajectories, the student's next to the twin's. Every reference run stays finite, so a
    NaN or inf in the student's is a mistake. Used in: optimizers 1.1, 2.x; landscape."""
    check_tensor(mine, name)
    check_close(mine, reference, name, hint=hint, **tolerances)


# ---- spies ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def optimizers_created(allowed: type | None = None):
    """Yield a list that collects the class names of torch.optim optimizers created inside the block
    (except ``allowed``, the student's own Optimizer subclass); the caller asserts.
    Used in: autodiff 2.1/2.3/2.5, optimizers 2.x, landscape, mnist 2a."""
    original = torch.optim.Optimizer.__init__
    created: list[str] = []

    def spy(self, *args, **kwargs):
        if allowed is None or type(self) is not allowed:
            created.append(type(self).__name__)
        return original(self, *args, **kwargs)

    torch.optim.Optimizer.__init__ = spy
    try:
        yield created
    finally:
        torch.optim.Optimizer.__init__ = original


@contextlib.contextmanager
def no_optimizer_created(message: str, allowed: type | None = None):
    """Fail with ``message`` (``{name}``: the class created) if the block creates a torch.optim
    optimizer other than ``allowed``. Used in: autodiff, optimizers, landscape, mnist 2a."""
    with optimizers_created(allowed) as created:
        yield
    assert not created, message.format(name=created[0])


class Steps:
    """The optimizer steps taken while ``optimizer_steps()`` watched, in order."""

    def __init__(self):
        self.optimizers: list[torch.optim.Optimizer] = []

    def by(self, optimizer) -> int:
        """How many steps ``optimizer`` took."""
        return sum(o is optimizer for o in self.optimizers)

    def on(self, params) -> int:
        """How many steps updated any of ``params`` (a model or tensors), by whichever optimizer."""
        params = params.parameters() if isinstance(params, nn.Module) else params
        ids = {id(p) for p in params}
        return sum(any(id(p) in ids for g in o.param_groups for p in g["params"]) for o in self.optimizers)

    def others(self, optimizer) -> int:
        """How many steps optimizers other than ``optimizer`` took."""
        return len(self.optimizers) - self.by(optimizer)


@contextlib.contextmanager
def optimizer_steps():
    """Record every ``step()`` of a torch.optim optimizer (subclasses included) inside the block:
    which optimizer, so a test can count steps per optimizer and per model (a second, throw-away
    optimizer doing the steps, a model trained twice or never). Used in: mnist 2a; landscape."""
    steps = Steps()
    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: steps.optimizers.append(optimizer))
    try:
        yield steps
    finally:
        handle.remove()


@contextlib.contextmanager
def autograd_calls():
    """Count calls of backward() and torch.autograd.grad while the block runs. Used in: rosenbrock A.1."""
    calls = []
    originals = (torch.Tensor.backward, torch.autograd.grad, torch.autograd.backward)

    def spy(original):
        def wrapper(*args, **kwargs):
            calls.append(original)
            return original(*args, **kwargs)
        return wrapper

    torch.Tensor.backward, torch.autograd.grad, torch.autograd.backward = (spy(o) for o in originals)
    try:
        yield calls
    finally:
        torch.Tensor.backward, torch.autograd.grad, torch.autograd.backward = originals


def check_gradients_on(where: str) -> None:
    """Gradients must be on between cells. Code that switches them off for the whole session
    (``torch.set_grad_enabled(False)``, a ``torch.no_grad()`` entered and never left) fails here;
    they are switched back on first, so later cells can train again. Used in: mnist (every test)."""
    if torch.is_grad_enabled():
        return
    torch.set_grad_enabled(True)
    raise AssertionError(
        f"{where} switched gradients off for the whole session (torch.set_grad_enabled(False), or a "
        "torch.no_grad() that is never left), so no later cell could train a model. The sheet's rule: compute "
        "without gradients inside a `with torch.no_grad():` block only")


# ---- a fixture of models -------------------------------------------------------------------------


class _Shapes(nn.Module):
    """Parameters of three shapes (a 3-D tensor, a matrix, a vector) and a frozen one, whose
    gradient stays None: state kept for one shape cannot serve the others, and an optimizer that
    does not skip ``p.grad is None`` raises."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 3, 2) * 0.5)
        self.v = nn.Parameter(torch.randn(3, 6) * 0.3)
        self.b = nn.Parameter(torch.zeros(3))
        self.frozen = nn.Parameter(torch.ones(4), requires_grad=False)

    def forward(self, x):
        x = x.flatten(1)
        return torch.tanh(x @ self.v.T) @ self.w.sum(0) @ torch.ones(2, 3, dtype=x.dtype) + self.b


def fixture_model(seed: int = 0) -> nn.Module:
    """A double-precision model of parameters (2, 3, 2), (3, 6), (3,) and a frozen (4,); inputs of
    6 features, 3 classes. Used in: landscape (the optimizers), optimizers of torch.optim's kind."""
    torch.manual_seed(seed)
    return _Shapes().double()


def two_groups(model: nn.Module, **second) -> list[dict]:
    """The model's parameters in two groups: the first with the optimizer's own settings, the
    second (the vector and the frozen parameter) with ``second`` (another lr, momentum, ...).
    Settings read from ``self`` or ``self.defaults`` instead of ``group[...]`` show on the second
    group, a step counter kept per group shows as one group running ahead of the other."""
    params = list(model.parameters())
    first = [p for p in params if p.dim() > 1]
    return [{"params": first}, {"params": [p for p in params if p.dim() <= 1], **second}]


# ---- figure data ---------------------------------------------------------------------------------


def style_of(artist) -> tuple:
    """What tells an artist apart in a legend: colour, line style, marker, hatch.
    Used in: mnist 2b, 3c (through ``legend_entries``)."""
    from matplotlib.colors import to_rgba

    if hasattr(artist, "patches"):  # a BarContainer: the style of its first bar
        artist = artist.patches[0] if artist.patches else artist
    if hasattr(artist, "get_linestyle") and hasattr(artist, "get_marker"):  # Line2D
        return ("line", to_rgba(artist.get_color()), artist.get_linestyle(), artist.get_marker())
    face = getattr(artist, "get_facecolor", lambda: None)()
    face = tuple(np.atleast_2d(face)[0]) if face is not None and np.size(face) else None
    return ("patch", face, getattr(artist, "get_hatch", lambda: None)())


@dataclass(frozen=True)
class LegendEntry:
    text: str
    style: tuple


def legend_entries(ax) -> list[LegendEntry]:
    """The entries of every legend that explains ``ax``: its own, and those of the whole figure
    (``fig.legend()``). Used in: mnist 2b, 3c."""
    legends = [ax.get_legend()] + list(getattr(ax.figure, "legends", []))
    entries = []
    for legend in legends:
        if legend is None:
            continue
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            entries.append(LegendEntry(text.get_text(), style_of(handle) if handle is not None else ()))
    return entries


@dataclass(frozen=True)
class Bar:
    x: float  # the centre
    width: float
    height: float
    bottom: float
    style: tuple
    label: str | None  # the label of its ax.bar call


def bars(ax) -> list[Bar]:
    """Every bar of a panel, with the label of the ``ax.bar`` call that drew it.
    Used in: mnist 3c."""
    from matplotlib.patches import Rectangle

    labels = {}
    for container in getattr(ax, "containers", []):
        for patch in getattr(container, "patches", []):
            labels[id(patch)] = container.get_label()
    return [Bar(p.get_x() + p.get_width() / 2, p.get_width(), float(p.get_height()), p.get_y(), style_of(p),
                labels.get(id(p))) for p in ax.patches if isinstance(p, Rectangle)]


def titles(fig) -> list[str]:
    """The figure's title (suptitle) and every panel's. Used in: landscape (a ``title`` argument)."""
    found = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    for ax in main_axes(fig):
        found += [ax.get_title(loc) for loc in ("left", "center", "right") if ax.get_title(loc)]
    return found


def curves(ax, expected: Iterable, rtol: float = 1e-5, atol: float = 1e-6) -> list:
    """The lines and point collections of ``ax`` whose finite y-values are ``expected`` (at any x: a
    curve drawn over another x-axis, or padded with NaN, is the same curve). Used in: mnist 2b."""
    expected = np.asarray(list(expected), dtype=float)
    expected = expected[np.isfinite(expected)]
    found = []
    for artist in [*ax.lines, *ax.collections]:
        if hasattr(artist, "get_ydata"):
            y = np.asarray(artist.get_ydata(), dtype=float)
        elif hasattr(artist, "get_offsets") and len(artist.get_offsets()):
            y = np.asarray(artist.get_offsets(), dtype=float)[:, 1]
        else:
            continue
        y = y[np.isfinite(y)]
        if y.shape == expected.shape and np.allclose(y, expected, rtol=rtol, atol=atol):
            found.append(artist)
    return found
