"""Hidden tests of the rosenbrock assignment: one function per graded test cell.

Each ``test_<cell>`` takes the student's objects (functions, classes, results, figures),
runs them next to a reference (the formulas of the sheet, ``torch.optim``, autograd) and
raises AssertionError with a message that quotes the sheet's rule; the messages hold no
expected numbers. What each function needs:

======================  ==========================================================
``test_a1``             ``rosenbrock`` (A.1)
``test_a2``             ``fig_contour``
``test_a3_gd`` ...      the class of A.3 (``GradientDescent``, ...)
``test_a4``             ``optimize``
``test_a5``             ``paths_same``, ``optimizers``, ``optimize``
``test_a5_plot``        ``fig_same``, ``paths_same``
``test_a6``             ``tuned_hyper``, ``tuned_steps``, ``paths_tuned``
``test_b1``             ``rosenbrock_th``
``test_b2``             ``optimize_th``
``test_b2_path``        ``path_th``, ``optimize_th``
``test_b2_plot``        ``fig_th``, ``path_th``
``test_b3``             ``RosenbrockModel``
``test_b4``             ``train``
``test_b5``             ``batch_losses``, ``fresh_model``, ``make_loader``, ``train``
``test_b5_plot``        ``fig_batch``, ``batch_losses``
``test_c1``             ``ConstraintOptimizer``
``test_c1_run``         ``iterates``, ``ConstraintOptimizer``, ``rosenbrock_th``
``test_c2``             ``fig_circle``, ``iterates``
======================  ==========================================================

One mistake, one lost cell. A function of an earlier exercise that later exercises call
(``rosenbrock``, the four classes, ``optimize``, ``rosenbrock_th``, ``optimize_th``,
``RosenbrockModel``, ``train``, ``ConstraintOptimizer``) is graded by a test that takes ``namespace=globals()``:
if the test fails, it puts the ``Reference`` version in the notebook's namespace under the
same name before it raises, so every later cell, the student's runs included, goes on with
a correct one. The tests of later functions also run them with the references of the
earlier ones in place (``using``). Runs and figures are graded against the student's own
functions where those differ from the reference, so a faithful run of a wrong function
costs nothing more. The instructor notebook calls these functions in the hidden region
*before* its visible checks, so that the fallback happens whatever check fails.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from hidden_tests.common import autograd_calls, call, fallback, using
from utils.checks import check_close, check_figure, check_number, check_tensor
from utils.figures import check_curve, check_point, drawn_xy, legend_labels, main_axes
from utils.seed import seed_everything
from utils.rosenbrock import rosenbrock as _rosenbrock_formula
from utils.variant import DEFAULTS, variant


# --------------------------------------------------------------------------------------
# Reference solutions, put in place of a student's function whose test failed.


def _f(x, y, a=1.0, b=100.0):
    return _rosenbrock_formula(x, y, a, b)  # utils.rosenbrock.rosenbrock, public already


def _grad(x, y, a=1.0, b=100.0):
    return np.array([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)])


class Reference:
    """The sheet's solutions, under the names the notebook uses."""

    @staticmethod
    def rosenbrock(x, y, a=1.0, b=100.0):
        return _f(x, y, a, b), _grad(x, y, a, b)

    class GradientDescent:
        def __init__(self, param, lr):
            self.param, self.lr = np.array(param, dtype=float), lr

        def step(self, grad):
            self.param = self.param - self.lr * np.asarray(grad, dtype=float)

    class MomentumGradientDescent:
        def __init__(self, param, lr, momentum):
            self.param, self.lr, self.momentum = np.array(param, dtype=float), lr, momentum
            self.v = np.zeros(2)

        def step(self, grad):
            self.v = self.momentum * self.v + np.asarray(grad, dtype=float)
            self.param = self.param - self.lr * self.v

    class RMSPropGradientDescent:
        def __init__(self, param, lr, alpha, eps):
            self.param, self.lr, self.alpha, self.eps = np.array(param, dtype=float), lr, alpha, eps
            self.s = np.zeros(2)

        def step(self, grad):
            grad = np.asarray(grad, dtype=float)
            self.s = self.alpha * self.s + (1 - self.alpha) * grad**2
            self.param = self.param - self.lr * grad / (np.sqrt(self.s) + self.eps)

    class AdaMomentumGradientDescent:
        def __init__(self, param, lr, momentum, alpha, eps):
            self.param = np.array(param, dtype=float)
            self.lr, self.momentum, self.alpha, self.eps = lr, momentum, alpha, eps
            self.s, self.v = np.zeros(2), np.zeros(2)

        def step(self, grad):
            grad = np.asarray(grad, dtype=float)
            self.s = self.alpha * self.s + (1 - self.alpha) * grad**2
            self.v = self.momentum * self.v + grad / (np.sqrt(self.s) + self.eps)
            self.param = self.param - self.lr * self.v

    @staticmethod
    def optimize(optim, steps, a=1.0, b=100.0):
        path = [np.array(optim.param, dtype=float)]
        for _ in range(steps):
            optim.step(_grad(path[-1][0], path[-1][1], a, b))
            path.append(np.array(optim.param, dtype=float))
        return np.array(path)

    @staticmethod
    def rosenbrock_th(x, y, a=1.0, b=100.0):
        return _f(x, y, a, b)

    @staticmethod
    def optimize_th(xy, optimizer, steps, a=1.0, b=100.0):
        path = [xy.detach().clone()]
        for _ in range(steps):
            optimizer.zero_grad()
            Reference.rosenbrock_th(xy[0], xy[1], a, b).backward()
            optimizer.step()
            path.append(xy.detach().clone())
        return torch.stack(path)

    class RosenbrockModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.rand(()))
            self.b = nn.Parameter(torch.rand(()))

        def forward(self, xy):
            return Reference.rosenbrock_th(xy[:, 0], xy[:, 1], self.a, self.b)

    @staticmethod
    def train(model, loader, optimizer, steps):
        losses, batches = [], iter(())
        while len(losses) < steps:
            try:
                xy, z = next(batches)
            except StopIteration:
                batches = iter(loader)
                continue
            optimizer.zero_grad()
            loss = (model(xy) - z).abs().mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    class ConstraintOptimizer(torch.optim.Optimizer):
        def __init__(self, params, lr=0.05):
            super().__init__(params, dict(lr=lr))

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    state.setdefault("length", group["lr"])
                    theta = torch.atan2(p[1], p[0])
                    slope = -torch.sin(theta) * p.grad[0] + torch.cos(theta) * p.grad[1]
                    if "slope" in state and slope * state["slope"] < 0:
                        state["length"] /= 2
                    state["slope"] = slope
                    theta = theta - state["length"] * torch.sign(slope)
                    p.copy_(torch.stack([torch.cos(theta), torch.sin(theta)]))
            return loss


def _fallback(namespace, name, reference):
    """On any failure inside, put ``reference`` in ``namespace[name]`` (later cells use it), then re-raise."""
    return fallback(namespace, {name: reference})


def _raises_as(what, advice, fn, *args, **kwargs):
    """Call student code; an exception becomes an AssertionError that says what to look at."""
    return call(what, fn, *args, advice=advice, **kwargs)


def _log_scaled(ax) -> bool:
    from matplotlib.colors import LogNorm

    return any(isinstance(getattr(artist, "norm", None), LogNorm) for artist in [*ax.collections, *ax.images])


def _check_on_log_map(ax, what: str) -> None:
    """The sheet's rule: ``what`` drawn on the contour plot of f, coloured on a log scale. Says
    which half is missing: no map of f at all (nothing coloured by value), or a linear one."""
    coloured = [artist for artist in [*ax.collections, *ax.images]
                if getattr(artist, "norm", None) is not None and artist.get_array() is not None]
    assert coloured, f"the sheet says: draw {what} on the contour plot of f; the panel has no contour plot"
    assert _log_scaled(ax), "the sheet says: colour the contour plot of f on a log scale (norm=LogNorm())"


def _one_panel(fig, name):
    check_figure(fig, name)
    axes = main_axes(fig)
    assert len(axes) == 1, f"{name} should have one panel (colour bars aside), not {len(axes)}"
    return axes[0]


def _shows_path(ax, path, atol=1e-6) -> bool:
    """True if one artist draws ``path`` in order from its first to its last point; points
    in between may be left out (a path drawn every 10th step still shows it), but not most
    of them (a start and an end point are no path)."""
    path = np.asarray(path, dtype=float)
    path = path[np.isfinite(path).all(axis=1)]
    fewest = min(len(path), max(10, len(path) // 20))
    for xy in drawn_xy(ax):
        if len(xy) < fewest or len(xy) > len(path):
            continue
        if not (np.allclose(xy[0], path[0], atol=atol, rtol=1e-5) and np.allclose(xy[-1], path[-1], atol=atol, rtol=1e-5)):
            continue
        j = 0
        for point in xy:
            while j < len(path) and not np.allclose(point, path[j], atol=atol, rtol=1e-5):
                j += 1
            if j == len(path):
                break
            j += 1
        else:
            return True
    return False


def _device64(device):
    """The notebook's device for float64 checks (Apple's MPS lacks float64: the CPU there).
    Student code may move tensors to the notebook's ``device``, so the checks run there too."""
    device = torch.device(device)
    return torch.device("cpu") if device.type == "mps" else device


def _as_path(value, name, rows):
    path = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=float)
    assert path.shape == (rows, 2), f"{name} should have shape ({rows}, 2), not {path.shape}"
    return path


# --------------------------------------------------------------------------------------
# Part A


def test_a1(rosenbrock, namespace=None):
    """Values and gradients at points where every term of the gradient matters, a, b != 1, 100."""
    with _fallback(namespace, "rosenbrock", Reference.rosenbrock):
        with autograd_calls() as calls:
            out = rosenbrock(0.5, -0.25)
            cases = [(0.5, -0.25, 1.0, 100.0), (-1.3, 2.1, 1.0, 100.0), (2.0, 0.5, 0.5, 10.0), (-0.7, -1.9, 3.0, 1.0)]
            results = [rosenbrock(x, y, a, b) for x, y, a, b in cases]
        assert not calls, ("the sheet says: work the two partial derivatives out on paper and code them directly: "
                           "no autograd in Part A (no backward(), no torch.autograd)")
        assert isinstance(out, tuple) and len(out) == 2, "the sheet says: rosenbrock returns two things, value, grad"
        for (x, y, a, b), (value, grad) in zip(cases, results):
            assert not isinstance(value, torch.Tensor) and not isinstance(grad, torch.Tensor), (
                "the sheet says: Part A is NumPy: the value is a float and the gradient a NumPy array, not tensors")
            assert isinstance(value, (float, np.floating)) or (isinstance(value, np.ndarray) and value.shape == ()), (
                f"the sheet says: for numbers x and y the value f(x, y) is a float, not a {type(value).__name__}")
            assert isinstance(grad, np.ndarray) and grad.shape == (2,), (
                "the sheet says: the gradient is a NumPy array of shape (2,)")
            check_close(value, _f(x, y, a, b), f"f({x}, {y}) for a = {a}, b = {b}",
                        hint="Use the arguments a and b in f = (a - x)^2 + b (y - x^2)^2.")
            check_close(grad, _grad(x, y, a, b), f"the gradient at ({x}, {y}) for a = {a}, b = {b}",
                        hint="Redo the chain rule for both terms, with the arguments a and b.")


def test_a2(fig_contour):
    """A log-coloured map of f on [-4, 4]^2 with the minimum and the start marked, however drawn."""
    ax = _one_panel(fig_contour, "fig_contour")
    assert _log_scaled(ax), "the sheet says: a logarithmic colour scale (norm=LogNorm() in contourf)"
    check_point(ax, (1.0, 1.0), "the global minimum (1, 1)", hint="The sheet asks for the minimum to be marked.")
    check_point(ax, (-2.0, -2.0), "the start point (-2, -2)", hint="The sheet asks for the start point to be marked.")
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    assert x0 <= -3.99 and x1 >= 3.99 and y0 <= -3.99 and y1 >= 3.99, (
        "the sheet says: draw f on [-4, 4]^2: fig_contour should show all of it")


def _grads(seed, n, scale):
    return np.random.default_rng(seed).normal(0.0, scale, size=(n, 2))


def _torch_points(make, start, grads):
    # torch.optim applies exactly the update rules of the sheet's table
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = make([p])
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        out.append(p.detach().clone().numpy())
    return np.array(out)


def _own_points(optim, grads):
    out = []
    for g in grads:
        optim.step(np.array(g, dtype=float))
        out.append(np.array(optim.param, dtype=float))
    return np.array(out)


def _check_optimizer(cls, name, configs, make_torch, hint):
    """Whole trajectories against torch.optim, two interleaved instances, and the float copy."""
    advice = f"The sheet says: the constructor is {name}(param, ...) with the keyword arguments of the table."
    start = np.array([0.5, -1.0])
    optim = _raises_as(f"{name}(start, ...)", advice, cls, start, **configs[0][1])
    _raises_as(f"{name}.step", "", optim.step, np.array([2.0, -1.0]))
    assert np.shape(optim.param) == (2,), f"{name}.param should have shape (2,), not {np.shape(optim.param)}"
    assert np.array_equal(start, [0.5, -1.0]), (
        f"the sheet says: __init__ stores a copy of the start point: {name} changed the array it was given")
    step = np.asarray(optim.param, dtype=float) - start
    assert step @ np.array([2.0, -1.0]) < 0, f"{name}.step moved uphill: a descent step goes against the gradient"
    # A start of integers: the sheet says the copy is a float array, so the steps are not rounded.
    optim = _raises_as(f"{name} started at an integer array", "The sheet says: store a float copy, "
                       "np.array(param, dtype=float).", cls, np.array([1, 2]), **configs[0][1])
    assert np.issubdtype(np.asarray(optim.param).dtype, np.floating), (
        "the sheet says: __init__ stores a float copy of the start point, np.array(param, dtype=float)")
    for start, hyper, scale, seed, steps in configs:
        grads = _grads(seed, steps, scale)
        check_close(_own_points(cls(np.array(start, dtype=float), **hyper), grads),
                    _torch_points(lambda p: make_torch(p, **hyper), start, grads),
                    f"the points of {name} with {hyper}", hint=hint)
    # Two optimisers at once: every buffer belongs to its own optimiser.
    start, hyper, scale, seed, steps = configs[-1]
    first, second = cls(np.array(start, dtype=float), **hyper), cls(np.array(start[::-1], dtype=float), **hyper)
    grads_1, grads_2 = _grads(seed + 10, steps, scale), _grads(seed + 20, steps, scale)
    points_1, points_2 = [], []
    for g1, g2 in zip(grads_1, grads_2):
        first.step(g1.copy())
        second.step(g2.copy())
        points_1.append(np.array(first.param, dtype=float))
        points_2.append(np.array(second.param, dtype=float))
    check_close(np.array(points_2), _torch_points(lambda p: make_torch(p, **hyper), start[::-1], grads_2),
                f"the points of a second {name} run next to a first one",
                hint="The sheet says: __init__ sets every buffer to zeros for this optimiser: keep buffers on self, "
                     "created in __init__, never shared between optimisers.")


def test_a3_gd(GradientDescent, namespace=None):
    with _fallback(namespace, "GradientDescent", Reference.GradientDescent):
        _check_optimizer(GradientDescent, "GradientDescent",
                         [((0.5, -1.0), dict(lr=0.1), 1.0, 0, 10), ((-2.0, -2.0), dict(lr=1e-3), 100.0, 1, 10)],
                         torch.optim.SGD, hint="The step is theta - lr * g.")


def test_a3_momentum(MomentumGradientDescent, namespace=None):
    with _fallback(namespace, "MomentumGradientDescent", Reference.MomentumGradientDescent):
        _check_optimizer(MomentumGradientDescent, "MomentumGradientDescent",
                         [((0.5, -1.0), dict(lr=0.1, momentum=0.9), 1.0, 2, 20),
                          ((-2.0, 1.0), dict(lr=0.01, momentum=0.5), 10.0, 3, 20)],
                         torch.optim.SGD, hint="Check the buffer: v starts at zero, v = momentum * v + g, then theta - lr * v.")


def test_a3_rmsprop(RMSPropGradientDescent, namespace=None):
    # eps = 0.5 with small gradients: there sqrt(s) + eps and sqrt(s + eps) differ.
    with _fallback(namespace, "RMSPropGradientDescent", Reference.RMSPropGradientDescent):
        _check_optimizer(RMSPropGradientDescent, "RMSPropGradientDescent",
                         [((0.5, -1.0), dict(lr=0.01, alpha=0.99, eps=1e-8), 1.0, 4, 20),
                          ((-2.0, -2.0), dict(lr=0.05, alpha=0.5, eps=1e-3), 100.0, 6, 20),
                          ((1.0, 2.0), dict(lr=0.1, alpha=0.9, eps=0.5), 0.3, 5, 20)],
                         torch.optim.RMSprop,
                         hint="Check s (it starts at zero and is updated before it is used) and where eps goes: sqrt(s) + eps.")


def test_a3_adamomentum(AdaMomentumGradientDescent, namespace=None):
    with _fallback(namespace, "AdaMomentumGradientDescent", Reference.AdaMomentumGradientDescent):
        _check_optimizer(AdaMomentumGradientDescent, "AdaMomentumGradientDescent",
                         [((0.5, -1.0), dict(lr=0.01, momentum=0.9, alpha=0.99, eps=1e-8), 1.0, 7, 20),
                          ((1.0, 2.0), dict(lr=0.1, momentum=0.5, alpha=0.9, eps=0.5), 0.3, 8, 20)],
                         torch.optim.RMSprop,
                         hint="Check both buffers (zero at the start) and where eps goes: "
                              "v = momentum * v + g / (sqrt(s) + eps).")


class _InPlaceGD:
    """Updates its point in place, as many optimisers do: a path needs copies of it."""

    def __init__(self, param, lr):
        self.param = np.array(param, dtype=float)
        self.lr = lr

    def step(self, grad):
        self.param -= self.lr * np.asarray(grad, dtype=float)


def test_a4(optimize, namespace=None):
    """Paths of an in-place optimiser, with a and b passed on, on the reference rosenbrock."""
    with _fallback(namespace, "optimize", Reference.optimize), using(optimize, rosenbrock=Reference.rosenbrock):
        for start, lr, steps, a, b in [((-2.0, -2.0), 1e-4, 30, 1.0, 100.0), ((0.5, 1.5), 1e-3, 17, 2.0, 10.0),
                                       ((1.5, -0.5), 2e-3, 1, 0.5, 5.0), ((0.0, 1.0), 1e-3, 0, 1.0, 100.0)]:
            path = optimize(_InPlaceGD(start, lr), steps, a=a, b=b)
            assert isinstance(path, np.ndarray), "the sheet says: optimize returns the path as a NumPy array"
            assert path.shape == (steps + 1, 2), (
                "the sheet says: the path has shape (steps + 1, 2): row 0 is the start, row k the point after k steps")
            check_close(path, Reference.optimize(_InPlaceGD(start, lr), steps, a, b),
                        f"the path of {steps} steps from {start} with a = {a}, b = {b}",
                        hint="Use the gradient at the current point with the given a and b, and store copies "
                             "(optim.param.copy()) of the points.")


_SAME = {"GradientDescent": dict(lr=3e-4), "MomentumGradientDescent": dict(lr=3e-4, momentum=0.9),
         "RMSPropGradientDescent": dict(lr=3e-4, alpha=0.99, eps=1e-8),
         "AdaMomentumGradientDescent": dict(lr=3e-4, momentum=0.9, alpha=0.99, eps=1e-8)}


def _same_or_own(value, name, reference, own):
    """``value`` must match the reference run, or the same run of the student's own code."""
    try:
        check_close(value, reference(), name)
    except AssertionError:
        check_close(value, own(), name, hint="Run it exactly as the sheet says, with the stated settings.")


def test_a5(paths_same, optimizers, optimize):
    """Each path is the run of its class from (-2, -2) with the shared settings, 3000 steps."""
    assert isinstance(paths_same, dict) and sorted(paths_same) == sorted(_SAME), (
        f"the sheet says: paths_same is keyed by class name: {sorted(_SAME)}")
    with np.errstate(all="ignore"):  # a diverging optimiser of the student is judged in A.3
        for name, hyper in _SAME.items():
            path = _as_path(paths_same[name], f"paths_same['{name}']", 3001)
            ref = getattr(Reference, name)
            _same_or_own(path, f"paths_same['{name}']",
                         lambda: Reference.optimize(ref(np.array([-2.0, -2.0]), **hyper), 3000),
                         lambda: optimize(optimizers[name](np.array([-2.0, -2.0]), **hyper), 3000))


def test_a5_plot(fig_same, paths_same):
    """Every path of paths_same is drawn on the log-coloured map of f, with the minimum marked."""
    ax = _one_panel(fig_same, "fig_same")
    _check_on_log_map(ax, "the paths")
    for name, path in paths_same.items():
        assert _shows_path(ax, np.asarray(path, dtype=float)), f"fig_same does not show the path of {name}"
    check_point(ax, (1.0, 1.0), "the minimum (1, 1)", hint="paths_figure marks it for you.")


def test_a6(tuned_hyper, tuned_steps, paths_tuned):
    """Every tuned run ends within 0.01 of (1, 1) in at most 20 000 steps, with the reference
    classes or with the student's own (whichever the settings were tuned for)."""
    for table, label in ((tuned_hyper, "tuned_hyper"), (tuned_steps, "tuned_steps")):
        assert isinstance(table, dict) and sorted(table) == sorted(_SAME), (
            f"the sheet says: {label} is keyed by class name: {sorted(_SAME)}")
    for name in _SAME:
        steps = tuned_steps[name]
        assert isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and 0 < steps <= 20_000, (
            f"the sheet says: at most 20 000 steps: tuned_steps['{name}'] should be a whole number up to 20 000")
        assert isinstance(tuned_hyper[name], dict) and set(tuned_hyper[name]) == set(_SAME[name]), (
            f"the sheet says: tuned_hyper['{name}'] holds the keyword arguments of its constructor: "
            f"{sorted(_SAME[name])}")
        with np.errstate(all="ignore"):
            end = Reference.optimize(getattr(Reference, name)(np.array([-2.0, -2.0]), **tuned_hyper[name]), steps)[-1]
        # None when the notebook's own run raised (paths_tuned was never made).
        own_end = np.asarray(paths_tuned[name], dtype=float)[-1] if paths_tuned and name in paths_tuned else np.inf
        if min(np.linalg.norm(end - 1.0), np.linalg.norm(own_end - 1.0)) <= 0.01:
            continue
        assert np.all(np.isfinite(end)), (
            f"the sheet says: every path ends within 0.01 of the minimum (1, 1): {name} diverges. "
            "Its learning rate is too large for the steep walls of the valley.")
        raise AssertionError(
            f"the sheet says: every path ends within 0.01 of the minimum (1, 1): {name} ends elsewhere. "
            "Tune its learning rate (too large jumps around, too small crawls) and its steps.")


# --------------------------------------------------------------------------------------
# Part B


def test_b1(rosenbrock_th, namespace=None):
    """Values, dtype, device and autograd gradients for tensors x, y, a, b; inputs unchanged."""
    with _fallback(namespace, "rosenbrock_th", Reference.rosenbrock_th):
        xs = torch.tensor([0.5, -1.3, 2.0, -0.7], dtype=torch.float64, requires_grad=True)
        ys = torch.tensor([-0.25, 2.1, 0.5, -1.9], dtype=torch.float64, requires_grad=True)
        a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(20.0, dtype=torch.float64, requires_grad=True)
        f = rosenbrock_th(xs, ys, a, b)
        check_tensor(f, "rosenbrock_th(x, y, a, b)", shape=(4,))
        assert f.dtype == torch.float64, "rosenbrock_th should keep the dtype of its inputs (float64 in, float64 out)"
        assert f.requires_grad and f.grad_fn is not None, (
            "the sheet says: use only operations autograd can follow: the result does not track gradients "
            "(no .item(), NumPy, torch.tensor(...) or detach() inside)")
        xd, yd, ad, bd = (t.detach() for t in (xs, ys, a, b))
        check_close(f, _f(xd, yd, ad, bd), "rosenbrock_th(x, y, a, b) for tensors a and b")
        f.sum().backward()
        hint = "The sheet says: use operations autograd can follow, and change none of the inputs."
        check_close(xs.grad, -2 * (ad - xd) - 4 * bd * xd * (yd - xd**2), "the gradient with respect to x", hint=hint)
        check_close(ys.grad, 2 * bd * (yd - xd**2), "the gradient with respect to y", hint=hint)
        check_close(a.grad, (2 * (ad - xd)).sum(), "the gradient with respect to a", hint=hint)
        check_close(b.grad, ((yd - xd**2) ** 2).sum(), "the gradient with respect to b", hint=hint)
        # numbers a, b; float32; any shape; inputs unchanged
        x = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
        y = torch.tensor([[1.5, 0.0], [-1.0, 3.0]])
        x0, y0 = x.clone(), y.clone()
        f = rosenbrock_th(x, y, 2.0, 5.0)
        check_tensor(f, "rosenbrock_th of (2, 2) tensors", shape=(2, 2))
        assert f.dtype == torch.float32, "rosenbrock_th should keep the dtype of its inputs (float32 in, float32 out)"
        check_close(f, _f(x0.double(), y0.double(), 2.0, 5.0), "rosenbrock_th(x, y, 2.0, 5.0) elementwise")
        assert torch.equal(x, x0) and torch.equal(y, y0), "the sheet says: change none of the inputs"
        check_close(rosenbrock_th(torch.tensor(0.3), torch.tensor(0.4)), _f(0.3, 0.4), "f(0.3, 0.4) with the defaults",
                    hint="The defaults are a = 1, b = 100.")


def _torch_path(make, start, steps, a, b, dtype=torch.float64, device="cpu"):
    p = torch.tensor(start, dtype=dtype, device=device, requires_grad=True)
    return Reference.optimize_th(p, make([p]), steps, a, b)


def test_b2(optimize_th, namespace=None, device="cpu"):
    """Paths of three torch.optim optimisers, float64, with a, b passed on; a path without gradients."""
    with _fallback(namespace, "optimize_th", Reference.optimize_th), \
            using(optimize_th, rosenbrock_th=Reference.rosenbrock_th):
        for label, make, start, steps, a, b in [
                ("SGD with momentum", lambda p: torch.optim.SGD(p, lr=2e-4, momentum=0.9), (-1.0, -1.0), 40, 1.0, 100.0),
                ("Adam", lambda p: torch.optim.Adam(p, lr=0.05), (0.5, 2.0), 30, 0.5, 10.0),
                ("RMSprop", lambda p: torch.optim.RMSprop(p, lr=0.01), (-1.5, 1.0), 25, 2.0, 1.0)]:
            dev = _device64(device)
            xy = torch.tensor(start, dtype=torch.float64, device=dev, requires_grad=True)
            path = optimize_th(xy, make([xy]), steps, a=a, b=b)
            check_tensor(path, f"the path of optimize_th ({label})", shape=(steps + 1, 2))
            assert not path.requires_grad and path.grad_fn is None, (
                "the sheet says: return the path without gradient tracking: store xy.detach().clone()")
            assert path.dtype == torch.float64, "the path should keep the dtype of xy (float64 in, float64 out)"
            check_close(path[0], start, f"the first row of the path ({label})",
                        hint="Row 0 is the start. The optimiser changes xy in place and xy.detach() shares its memory: "
                             "the sheet says, store xy.detach().clone().")
            check_close(path, _torch_path(make, start, steps, a, b, device=dev), f"the path of optimize_th ({label}, a = {a}, b = {b})",
                        hint="Every step: optimizer.zero_grad(), f at xy with the given a and b, backward(), "
                             "optimizer.step(); store xy.detach().clone().")
            check_close(path[-1], xy, "the last row of the path", hint="The last row is where xy is after the last step.")


def test_b2_path(path_th, optimize_th, device="cpu", student_id=""):
    """path_th is the run the sheet asks for: Adam, 1000 steps, from the student's own start
    point with their own learning rate (utils/variant.py; the grader's id wins over the typed one)."""
    mine = variant("rosenbrock", student_id).numbers
    check_tensor(path_th, "path_th", shape=(1001, 2))
    assert not path_th.requires_grad, "the sheet says: the path does not track gradients"
    _not_the_default_numbers(path_th.detach().cpu(), mine)
    make = lambda p: torch.optim.Adam(p, lr=mine.lr)

    def own():
        xy = torch.tensor(mine.start, device=device, requires_grad=True)
        return optimize_th(xy, make([xy]), 1000)

    _same_or_own(path_th.cpu(), "path_th",
                 lambda: _torch_path(make, mine.start, 1000, 1.0, 100.0, torch.float32, device).cpu(),
                 lambda: own().cpu())


def _not_the_default_numbers(path, mine):
    """A run from the default start point, or with the default rate, where the student's own
    numbers differ: the one message that says so (the student kept the sheet's example numbers)."""
    default = DEFAULTS["rosenbrock"]
    if mine == default:
        return
    if mine.start != default.start and torch.allclose(path[0].double(), torch.tensor(default.start, dtype=torch.float64)):
        raise AssertionError("the sheet says: start at your own start point start_th, which comes from your "
                             "student id; path_th starts at the default start point instead")
    if mine.lr != default.lr:
        start = tuple(float(v) for v in path[0])
        default_run = _torch_path(lambda p: torch.optim.Adam(p, lr=default.lr), start, 1000, 1.0, 100.0, torch.float32)
        if torch.allclose(path.double(), default_run.double(), rtol=1e-4, atol=1e-6):
            raise AssertionError("the sheet says: use your own learning rate lr_th, which comes from your student "
                                 "id; path_th is the run with the default learning rate instead")


def test_b2_plot(fig_th, path_th):
    ax = _one_panel(fig_th, "fig_th")
    assert _shows_path(ax, path_th.detach().cpu().numpy(), atol=1e-5), "the figure does not show path_th"
    check_point(ax, (1.0, 1.0), "the minimum (1, 1)", hint="paths_figure marks it for you.")
    _check_on_log_map(ax, "the path")


def test_b3(RosenbrockModel, namespace=None, device="cpu"):
    """Two scalar parameters from U[0, 1], forward for (n, 2) batches with the model's a and b, gradients."""
    with _fallback(namespace, "RosenbrockModel", Reference.RosenbrockModel), \
            using(RosenbrockModel, rosenbrock_th=Reference.rosenbrock_th):
        model = RosenbrockModel()
        assert isinstance(model, nn.Module), "the sheet says: RosenbrockModel is an nn.Module"
        assert isinstance(getattr(model, "a", None), nn.Parameter) and isinstance(getattr(model, "b", None), nn.Parameter), (
            "the sheet says: self.a and self.b are nn.Parameter")
        assert len(list(model.parameters())) == 2, "the sheet says: the model has two parameters, a and b"
        assert model.a.numel() == 1 and model.b.numel() == 1, "the sheet says: a and b each hold a single number"
        inits = torch.stack([torch.stack([m.a.detach().reshape(()), m.b.detach().reshape(())])
                             for m in (RosenbrockModel() for _ in range(3))])
        assert bool(((inits >= 0) & (inits <= 1)).all()) and len(set(inits.flatten().tolist())) == 6, (
            "the sheet says: each parameter starts as a random number from U[0, 1] (torch.rand(()))")
        dev = _device64(device)
        model = RosenbrockModel().to(device=dev, dtype=torch.float64)
        with torch.no_grad():
            model.a.fill_(0.7)
            model.b.fill_(20.0)
        pts = torch.tensor([[0.5, -0.25], [-1.3, 2.1], [2.0, 0.5]], dtype=torch.float64, device=dev)
        out = model(pts)
        check_tensor(out, "the output of the model for 3 points", shape=(3,))
        a, b = (torch.tensor(v, dtype=torch.float64, device=dev) for v in (0.7, 20.0))
        check_close(out, _f(pts[:, 0], pts[:, 1], a, b), "the output of the model",
                    hint="forward(xy) computes f for each row (x, y) of xy, with the model's a and b.")
        out.sum().backward()
        check_close(model.a.grad.reshape(()), (2 * (a - pts[:, 0])).sum(), "the gradient with respect to a")
        check_close(model.b.grad.reshape(()), ((pts[:, 1] - pts[:, 0] ** 2) ** 2).sum(), "the gradient with respect to b")


class _Affine(nn.Module):
    """A model of two parameter tensors of different shapes, which no hand formula for a' and b' knows."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.3, -0.2], dtype=torch.float64))
        self.c = nn.Parameter(torch.tensor(0.1, dtype=torch.float64))

    def forward(self, xy):
        return xy @ self.w + self.c


def test_b4(train, namespace=None, device="cpu"):
    """Losses and parameters against a reference loop, over more steps than one pass of the data."""
    from torch.utils.data import DataLoader, TensorDataset

    with _fallback(namespace, "train", Reference.train):
        gen = torch.Generator().manual_seed(1)
        dev = _device64(device)
        xy = (2 * torch.rand(40, 2, generator=gen, dtype=torch.float64) - 1).to(dev)
        z = _f(xy[:, 0], xy[:, 1], 1.0, 100.0)
        hint = "Every step: zero_grad(), the L1 loss of the batch (mean |output - z|), backward(), step(); next batch."
        for label, make, bs, steps, start in [
                ("Adam, lr = 0.3", lambda p: torch.optim.Adam(p, lr=0.3), 8, 12, (0.2, 0.7)),
                ("SGD, lr = 0.05", lambda p: torch.optim.SGD(p, lr=0.05), 5, 9, (0.9, 50.0)),
                ("SGD with momentum", lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.5), 40, 3, (0.5, 0.5)),
                ("Adam on another model", lambda p: torch.optim.Adam(p, lr=0.1), 16, 7, None)]:
            models = []
            for _ in range(2):
                model = (Reference.RosenbrockModel().double() if start else _Affine()).to(dev)
                if start:
                    with torch.no_grad():
                        model.a.fill_(start[0])
                        model.b.fill_(start[1])
                models.append(model)
            # no shuffling, so that train and the reference see the same batches
            loader = DataLoader(TensorDataset(xy, z), batch_size=bs)
            losses = train(models[0], loader, make(models[0].parameters()), steps)
            assert isinstance(losses, list) and len(losses) == steps, (
                "the sheet says: train returns the list of the `steps` batch losses")
            assert all(isinstance(v, float) for v in losses), (
                "the sheet says: the losses are Python floats (loss.item()), not tensors")
            reference = Reference.train(models[1], loader, make(models[1].parameters()), steps)
            check_close(losses, reference, f"the losses returned by train ({label}, batch size {bs})", hint=hint)
            check_close(torch.cat([p.detach().reshape(-1) for p in models[0].parameters()]),
                        torch.cat([p.detach().reshape(-1) for p in models[1].parameters()]),
                        f"the parameters after train ({label})", hint=hint)


def _reference_batch_run(make_loader, batch_size, device):
    seed_everything(0)
    model = Reference.RosenbrockModel().to(device)
    return Reference.train(model, make_loader(batch_size), torch.optim.Adam(model.parameters(), lr=1.0), 100)


def test_b5(batch_losses, fresh_model, make_loader, train, device="cpu"):
    """batch_losses[bs]: 100 losses of a fresh model trained with Adam (lr 1.0) on make_loader(bs)."""
    assert isinstance(batch_losses, dict) and sorted(batch_losses) == [1, 32, 128], (
        "the sheet says: batch_losses has the keys 1, 32 and 128")
    for bs in (1, 32, 128):
        losses = batch_losses[bs]
        assert len(losses) == 100, f"the sheet says: batch_losses[{bs}] holds the losses of the first 100 steps"
        assert all(isinstance(v, float) for v in losses), f"batch_losses[{bs}] should hold Python floats, as train returns"

        def own(bs=bs):
            model = fresh_model()
            return train(model, make_loader(bs), torch.optim.Adam(model.parameters(), lr=1.0), 100)

        _same_or_own([float(v) for v in losses], f"batch_losses[{bs}]",
                     lambda bs=bs: _reference_batch_run(make_loader, bs, device), own)


def test_b5_plot(fig_batch, batch_losses):
    ax = _one_panel(fig_batch, "fig_batch")
    assert ax.get_yscale() == "log", "the sheet says: a logarithmic y-axis"
    for bs, losses in batch_losses.items():
        check_curve(ax, [float(v) for v in losses], f"the curve of batch size {bs}", rtol=1e-5)
    assert len(legend_labels(ax)) >= 3, "the sheet says: a legend that tells the three batch sizes apart"


# --------------------------------------------------------------------------------------
# Part C (bonus)


def _circle_reference(theta, lr, steps, grad):
    # the rule of C.1 in plain Python floats
    length, previous, out = lr, 0.0, [theta]
    for _ in range(steps):
        gx, gy = grad(math.cos(theta), math.sin(theta))
        slope = -math.sin(theta) * gx + math.cos(theta) * gy
        if slope * previous < 0:
            length /= 2
        previous = slope
        theta -= length * math.copysign(1.0, slope)
        out.append(theta)
    return np.stack([np.cos(out), np.sin(out)], axis=1)


def _constrained_minimum(theta0, f, n=2_000_001):
    # the minimum of f on the circle that descent from theta0 runs into, from a dense grid over theta
    grid = theta0 + np.linspace(-np.pi, np.pi, n)
    values = f(np.cos(grid), np.sin(grid))
    i = n // 2
    if values[i + 1] < values[i]:
        j = i + int(np.argmax(np.diff(values[i:]) > 0))
    else:
        j = i - int(np.argmax(np.diff(values[:i + 1][::-1]) > 0))
    return grid[j]


def _run_circle(ConstraintOptimizer, thetas, lr, steps, f):
    xs = [torch.tensor([math.cos(t), math.sin(t)], dtype=torch.float64, requires_grad=True) for t in thetas]
    optimizer = ConstraintOptimizer(xs, lr=lr)
    out = [[x.detach().clone()] for x in xs]
    for _ in range(steps):
        optimizer.zero_grad()
        sum(f(x) for x in xs).backward()
        optimizer.step()
        for row, x in zip(out, xs):
            row.append(x.detach().clone())
    return [torch.stack(row) for row in out], optimizer, xs


def test_c1(ConstraintOptimizer, namespace=None):
    """The rule of C.1 on several starts, settings and functions, two parameters, a closure."""
    with _fallback(namespace, "ConstraintOptimizer", Reference.ConstraintOptimizer):
        _check_constraint_optimizer(ConstraintOptimizer)


def _check_constraint_optimizer(ConstraintOptimizer):
    hint = "Follow the four steps of C.1: the slope from p.grad, halve on a change of sign, theta - s * sign(d), write back."
    x = torch.tensor([0.6, 0.8], requires_grad=True)
    optimizer = ConstraintOptimizer([x], lr=0.05)
    assert isinstance(optimizer, torch.optim.Optimizer), "the sheet says: ConstraintOptimizer subclasses torch.optim.Optimizer"
    assert optimizer.defaults.get("lr") == 0.05, "the sheet says: pass defaults = dict(lr=lr) to the parent constructor"
    for theta0, lr, steps, a, b in [(3 * math.pi / 4, 0.05, 30, 1.0, 100.0), (0.2, 0.1, 30, 1.0, 100.0),
                                    (1.0, 0.2, 30, 0.5, 10.0)]:
        (path,), _, _ = _raises_as("a run of ConstraintOptimizer", "The sheet says: decorate step with "
                                   "@torch.no_grad() and write the new point into p in place (p.copy_).",
                                   _run_circle, ConstraintOptimizer, [theta0], lr, steps, lambda x: _f(x[0], x[1], a, b))
        assert path.dtype == torch.float64, "write (cos theta, sin theta) into p in place, keeping its dtype (p.copy_)"
        check_close(path, _circle_reference(theta0, lr, steps, lambda u, v: tuple(_grad(u, v, a, b))),
                    f"the iterates from theta = {theta0:.3f} with lr = {lr}, a = {a}, b = {b}", atol=1e-6, hint=hint)
        star = _constrained_minimum(theta0, lambda u, v: _f(u, v, a, b))
        check_close(path[-1], [math.cos(star), math.sin(star)], f"the last iterate from theta = {theta0:.3f}", atol=1e-4)
    c = torch.tensor([1.0, 2.0], dtype=torch.float64)  # f(x) = c . x is smallest at -c / |c|
    (path,), _, _ = _run_circle(ConstraintOptimizer, [-2.5], 0.3, 40, lambda x: (c * x).sum())
    check_close(path, _circle_reference(-2.5, 0.3, 40, lambda u, v: (1.0, 2.0)), "the iterates for a linear f",
                atol=1e-6, hint=hint)
    # Two parameters in one optimiser, each with its own step length and previous slope.
    paths, optimizer, xs = _run_circle(ConstraintOptimizer, [0.2, 2.0], 0.1, 30, lambda x: _f(x[0], x[1]))
    for theta0, path in zip([0.2, 2.0], paths):
        check_close(path, _circle_reference(theta0, 0.1, 30, lambda u, v: tuple(_grad(u, v))),
                    f"the iterates of a second parameter from theta = {theta0:.3f}",
                    hint="The sheet says: keep s and the previous d in self.state[p], a dictionary per parameter.")
    assert all(len(optimizer.state[x]) > 0 for x in xs), (
        "the sheet says: keep s and the previous d in self.state[p], a dictionary per parameter")
    # a closure is evaluated with gradients enabled and its loss returned
    x = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    optimizer = ConstraintOptimizer([x], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = _f(x[0], x[1])
        loss.backward()
        return loss

    loss = _raises_as("step(closure)", "The sheet says: call the closure inside torch.enable_grad().", optimizer.step, closure)
    check_close(loss, 101.0, "the loss returned by step(closure)", hint="Return the loss that the closure returns.")
    check_close(x, _circle_reference(math.pi / 2, 0.1, 1, lambda u, v: tuple(_grad(u, v)))[-1],
                "the point after step(closure)")


def test_c1_run(iterates, ConstraintOptimizer, rosenbrock_th, device="cpu"):
    """iterates: the start and 100 steps with lr 0.05 from (-1, 1) / sqrt(2)."""
    check_tensor(iterates, "iterates", shape=(101, 2))
    its = iterates.detach().cpu().double()
    check_close(its[0], [-1 / math.sqrt(2), 1 / math.sqrt(2)], "the first iterate", hint="Start at (-1, 1) / sqrt(2).")

    def own():
        x = (torch.tensor([-1.0, 1.0], device=device) / math.sqrt(2)).requires_grad_()
        optimizer = ConstraintOptimizer([x], lr=0.05)
        out = [x.detach().clone()]
        for _ in range(100):
            optimizer.zero_grad()
            rosenbrock_th(x[0], x[1]).backward()
            optimizer.step()
            out.append(x.detach().clone())
        return torch.stack(out).cpu().double()

    reference = _circle_reference(3 * math.pi / 4, 0.05, 100, lambda u, v: tuple(_grad(u, v)))
    try:
        check_close(its, reference, "iterates", atol=1e-4)
    except AssertionError:
        check_close(its, own(), "iterates", atol=1e-5,
                    hint="The sheet says: 100 steps with lr = 0.05 from (-1, 1) / sqrt(2), with rosenbrock_th.")


def test_c2(fig_circle, iterates):
    ax = _one_panel(fig_circle, "fig_circle")
    assert ax.get_yscale() == "log", "the sheet says: a logarithmic y-axis"
    drawn = drawn_xy(ax)
    on_curve = [xy for xy in drawn
                if len(xy) >= 200 and np.allclose(xy[:, 1], _f(np.cos(xy[:, 0]), np.sin(xy[:, 0])), rtol=1e-4, atol=1e-6)]
    assert on_curve, "the sheet says: plot f(cos theta, sin theta) against theta (at least 200 points)"
    assert any(xy[:, 0].min() <= -3.1 and xy[:, 0].max() >= 3.1 for xy in on_curve), (
        "the sheet says: theta runs over [-pi, pi]")
    its = iterates.detach().cpu().double().numpy()
    theta = np.arctan2(its[:, 1], its[:, 0])
    check_curve(ax, np.stack([theta, _f(its[:, 0], its[:, 1])], axis=1), "the iterates (theta_k, f(x_k))",
                hint="theta_k = atan2 of the iterate, f at the iterate.", rtol=1e-3, atol=1e-4)
    assert legend_labels(ax), "the sheet says: add a legend"
