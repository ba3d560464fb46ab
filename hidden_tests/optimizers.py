"""Hidden tests of the assignment "optimizers" (source/optimizers/optimizers.ipynb).

Each optimizer is run next to its ``torch.optim`` twin from the same starts, in double
precision, and whole trajectories are compared; one run has two parameter tensors of
different shapes, so state kept once for all parameters shows. The reference loop
(``run``) is written here, so Part 2 is graded independently of the student's
``optimize_function`` (Part 1).

One slip costs one cell: the tests of ``optimize_function`` and of the four optimizers take
``namespace=globals()`` and, when they fail, put the ``Reference`` version in the notebook
under the same name before they raise, so Part 3's paths and the bonus run with a correct one
(the notebook calls them before its visible checks, so this happens whatever fails).

The bonus race starts at the student's own point (utils/variant.py): ``test_bonus_claim`` asks
``variant`` for it, never the notebook's ``bonus_start``, and says so when a claim holds from the
default start point instead.
"""

from __future__ import annotations

import numpy as np
import torch

from hidden_tests.common import compare_trajectories, fallback, no_optimizer_created, trajectory
from utils import get_device
from utils.checks import check_close, check_tensor
from utils.figures import check_curve, check_point, legend_labels, main_axes
from utils.rosenbrock import rosenbrock
from utils.variant import DEFAULTS, variant

DEVICE = get_device()
# Apple's MPS devices have no float64: the double-precision runs use the CPU there.
DEVICE64 = DEVICE if DEVICE.type != "mps" else torch.device("cpu")

BANANA = lambda theta: rosenbrock(theta[0], theta[1])  # noqa: E731


def start(x: float, y: float) -> torch.Tensor:
    """A start point in double precision, so that rounding never hides a mistake."""
    return torch.tensor([x, y], dtype=torch.float64, device=DEVICE64)


def two_parameters(a, b):
    """A function of two parameter tensors of different shapes."""
    return rosenbrock(a[0], b[0]) + (b[1] - 0.5) ** 2 + 10 * (b[2] + 1.0) ** 2


def two_starts() -> list[torch.Tensor]:
    return [torch.tensor([-1.2], dtype=torch.float64, device=DEVICE64),
            torch.tensor([1.5, 2.0, 0.0], dtype=torch.float64, device=DEVICE64)]


def run(f, starts, make_optimizer, steps: int) -> torch.Tensor:
    """The reference loop. Row k holds every parameter after k steps, flattened into one row."""
    params = [s.detach().clone().requires_grad_(True) for s in starts]
    return trajectory(make_optimizer, params, lambda k: f(*params), steps)[0]


def compare(mine, reference, name: str, hint: str) -> None:
    compare_trajectories(mine, reference, name, hint)


def no_torch_optim(rule: str):
    """Fail if the student's code builds a torch.optim optimizer while it runs."""
    return no_optimizer_created(f"your optimizer uses torch.optim.{{name}} inside, but the sheet says: {rule}")


OWN_UPDATE = "write the update yourself, in step(), from p.grad"


def check_own_optimizer(cls, name: str) -> None:
    assert isinstance(cls, type), f"{name} should be a class"
    assert not issubclass(cls, torch.optim.Optimizer), (
        f"{name} should derive from BaseOptimizer, not from torch.optim: the sheet says {OWN_UPDATE}")


def compare_with_torch(cls, torch_factory, cases, two_params_settings, name: str, hint: str,
                       state_hint: str, namespace=None) -> None:
    """The student's class against its torch.optim twin: several starts and settings, then
    two parameter tensors of different shapes. On failure the reference class takes its place."""
    with fallback(namespace, {name: getattr(Reference, name)}):
        _compare_with_torch(cls, torch_factory, cases, two_params_settings, name, hint, state_hint)


def _compare_with_torch(cls, torch_factory, cases, two_params_settings, name, hint, state_hint) -> None:
    check_own_optimizer(cls, name)
    two = f"the {name} trajectory of two parameter tensors of different shapes"
    with no_torch_optim(OWN_UPDATE):
        mine = [run(BANANA, [start(*xy)], lambda ps: cls(ps, **settings), steps) for xy, settings, steps in cases]
        try:
            mine_two = run(two_parameters, two_starts(), lambda ps: cls(ps, **two_params_settings), 50)
        except RuntimeError as error:  # state of one parameter's shape applied to another's
            raise AssertionError(f"{two} is not correct. {state_hint}\n"
                                 f"(the run raised {type(error).__name__}: {error})") from None
    for (xy, settings, steps), trajectory in zip(cases, mine):
        compare(trajectory, run(BANANA, [start(*xy)], lambda ps: torch_factory(ps, **settings), steps),
                f"the {name} trajectory from {xy} with settings {settings or 'default'}", hint=hint)
    compare(mine_two, run(two_parameters, two_starts(), lambda ps: torch_factory(ps, **two_params_settings), 50),
            two, hint=state_hint)


# ---- references -------------------------------------------------------------------------


class _Own:
    """The notebook's BaseOptimizer, for the references."""

    def __init__(self, params):
        self.params = list(params)

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()


class Reference:
    """The sheet's solutions, under the names the notebook uses; put in place of a student's
    function or class whose test failed."""

    @staticmethod
    def optimize_function(f, start, make_optimizer, steps):
        theta = start.detach().clone().requires_grad_(True)
        optimizer = make_optimizer([theta])
        points = [theta.detach().clone()]
        for _ in range(steps):
            optimizer.zero_grad()
            f(theta).backward()
            optimizer.step()
            points.append(theta.detach().clone())
        return torch.stack(points)

    class SGD(_Own):
        def __init__(self, params, lr):
            super().__init__(params)
            self.lr = lr

        @torch.no_grad()
        def step(self):
            for p in self.params:
                p -= self.lr * p.grad

    class Momentum(_Own):
        def __init__(self, params, lr, beta=0.9):
            super().__init__(params)
            self.lr, self.beta = lr, beta
            self.v = [torch.zeros_like(p) for p in self.params]

        @torch.no_grad()
        def step(self):
            for p, v in zip(self.params, self.v):
                v.mul_(self.beta).add_((1 - self.beta) * p.grad)
                p -= self.lr * v

    class RMSprop(_Own):
        def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
            super().__init__(params)
            self.lr, self.alpha, self.eps = lr, alpha, eps
            self.s = [torch.zeros_like(p) for p in self.params]

        @torch.no_grad()
        def step(self):
            for p, s in zip(self.params, self.s):
                s.mul_(self.alpha).add_((1 - self.alpha) * p.grad ** 2)
                p -= self.lr * p.grad / (s.sqrt() + self.eps)

    class Adam(_Own):
        def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8):
            super().__init__(params)
            self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
            self.m = [torch.zeros_like(p) for p in self.params]
            self.v = [torch.zeros_like(p) for p in self.params]

        @torch.no_grad()
        def step(self):
            self.t += 1
            beta1, beta2 = self.betas
            for p, m, v in zip(self.params, self.m, self.v):
                m.mul_(beta1).add_((1 - beta1) * p.grad)
                v.mul_(beta2).add_((1 - beta2) * p.grad ** 2)
                m_hat, v_hat = m / (1 - beta1 ** self.t), v / (1 - beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)


# ---- Part 1 ---------------------------------------------------------------------------

def test_optimize_function(optimize_function, namespace=None) -> None:
    """1.1: the loop, against the reference loop, for several optimizers, shapes and dtypes."""
    with fallback(namespace, {"optimize_function": Reference.optimize_function}):
        _check_optimize_function(optimize_function)


def _check_optimize_function(optimize_function) -> None:
    hint = "Is the gradient reset before every backward()? Is the start the first row, and are there steps + 1 rows?"
    for xy, make, steps in [((-1.5, 2.0), lambda ps: torch.optim.SGD(ps, lr=1e-3), 60),
                            ((0.0, 0.0), lambda ps: torch.optim.Adam(ps, lr=0.05), 80),
                            ((1.5, -0.5), lambda ps: torch.optim.SGD(ps, lr=5e-4, momentum=0.9), 40)]:
        s = start(*xy)
        made = []

        def counting(params, make=make):
            made.append(list(params))
            return make(made[-1])

        mine = optimize_function(BANANA, s, counting, steps)
        assert len(made) == 1, (
            f"make_optimizer was called {len(made)} times: the sheet says create the optimizer once, "
            "with optimizer = make_optimizer([theta])")
        theta = made[0][0] if made[0] else None
        assert isinstance(theta, torch.Tensor) and theta.is_leaf and theta.requires_grad, (
            "the sheet says: theta is a copy of start that is a leaf tensor with requires_grad=True")
        check_tensor(mine, f"the trajectory from {xy}", shape=(steps + 1, 2))
        assert mine.dtype == s.dtype, (
            f"the trajectory is {mine.dtype} for a {s.dtype} start: the sheet says theta is a copy of start "
            "(same dtype, same device)")
        check_close(mine, run(BANANA, [s], make, steps), f"the trajectory from {xy}", hint=hint)
        check_close(s, xy, "start after optimize_function", rtol=0, atol=0,
                    hint="optimize_function must not change start: copy it.")
        assert not mine.requires_grad, "the sheet says: return a trajectory that does not require gradients"
    # Any shape of parameter, and zero steps.
    centre = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, device=DEVICE64)
    bowl = lambda theta: ((theta - centre) ** 2 * torch.arange(1, 4, device=DEVICE64)).sum()  # noqa: E731
    s3 = torch.zeros(3, dtype=torch.float64, device=DEVICE64)
    mine = optimize_function(bowl, s3, lambda ps: torch.optim.SGD(ps, lr=0.1), 10)
    check_tensor(mine, "the trajectory of a 3-element parameter", shape=(11, 3))
    check_close(mine, run(bowl, [s3], lambda ps: torch.optim.SGD(ps, lr=0.1), 10),
                "the trajectory of a 3-element parameter", hint=hint)
    check_close(optimize_function(BANANA, start(0.5, 0.5), lambda ps: torch.optim.SGD(ps, lr=0.1), 0),
                [[0.5, 0.5]], "the trajectory of 0 steps", hint="0 steps give just the start point.")


# ---- Part 2 ---------------------------------------------------------------------------

def test_sgd(SGD, namespace=None) -> None:
    """2.1"""
    hint = "Update with p -= lr * p.grad, for every parameter in self.params."
    cases = [((-1.5, 2.0), {"lr": 1e-3}, 150), ((0.0, 0.0), {"lr": 1.5e-3}, 100), ((1.5, -0.5), {"lr": 5e-4}, 120)]
    compare_with_torch(SGD, torch.optim.SGD, cases, {"lr": 1e-3}, "SGD", hint, hint, namespace)


def _torch_momentum(params, lr, beta=0.9):
    # The moving-average momentum of 2.2 is torch.optim.SGD with a rescaled learning rate (2.3).
    return torch.optim.SGD(params, lr=lr * (1 - beta), momentum=beta)


def test_momentum(Momentum, namespace=None) -> None:
    """2.2"""
    hint = "Start every velocity at zero, then v <- beta * v + (1 - beta) * g and p <- p - lr * v, on every step."
    cases = [((-1.5, 2.0), {"lr": 1e-3, "beta": 0.9}, 150), ((0.0, 0.0), {"lr": 5e-3, "beta": 0.5}, 100),
             ((1.5, -0.5), {"lr": 4e-3, "beta": 0.95}, 120), ((-0.5, 2.5), {"lr": 5e-3, "beta": 0.8}, 80),
             ((-1.0, 1.0), {"lr": 2e-3}, 100)]  # the default beta, 0.9
    compare_with_torch(Momentum, _torch_momentum, cases, {"lr": 5e-3, "beta": 0.8}, "Momentum", hint,
                       "Keep one velocity per parameter tensor, of its shape.", namespace)


def test_matching_torch_sgd(matching_torch_sgd) -> None:
    """2.3"""
    hint = "Write v_t and b_t as sums of the gradients so far; look at the first step in particular."
    probe = matching_torch_sgd([torch.zeros(2, dtype=torch.float64, requires_grad=True)], 0.01, 0.9)
    assert isinstance(probe, torch.optim.SGD), (
        f"the sheet says matching_torch_sgd returns a torch.optim.SGD, not a {type(probe).__name__}")
    for xy, lr, beta, steps in [((-1.5, 2.0), 1e-3, 0.9, 150), ((0.0, 0.0), 5e-3, 0.5, 100),
                                ((1.5, -0.5), 4e-3, 0.95, 120)]:
        compare(run(BANANA, [start(*xy)], lambda ps: matching_torch_sgd(ps, lr, beta), steps),
                run(BANANA, [start(*xy)], lambda ps: Reference.Momentum(ps, lr, beta), steps),
                f"the trajectory of matching_torch_sgd from {xy} with lr {lr}, beta {beta}", hint=hint)


def test_rmsprop(RMSprop, namespace=None) -> None:
    """2.4"""
    hint = "Start s at zero; s <- alpha * s + (1 - alpha) * g**2; p <- p - lr * g / (sqrt(s) + eps), eps outside the root."
    cases = [((-1.5, 2.0), {}, 150), ((0.0, 0.0), {"lr": 0.01, "alpha": 0.9, "eps": 0.1}, 150),
             ((1.5, -0.5), {"lr": 0.003, "alpha": 0.99, "eps": 1.0}, 150),
             ((-0.5, 2.5), {"lr": 0.02, "alpha": 0.8, "eps": 0.1}, 100)]
    compare_with_torch(RMSprop, torch.optim.RMSprop, cases, {"lr": 0.01, "eps": 0.1}, "RMSprop", hint,
                       "Keep one buffer s per parameter tensor, of its shape.", namespace)


def test_adam(Adam, namespace=None) -> None:
    """2.5"""
    hint = ("Start m, v and t at zero; correct m and v by 1 - beta**t, with t the number of steps so far; "
            "add eps after the square root.")
    cases = [((-1.5, 2.0), {}, 150), ((0.0, 0.0), {"lr": 0.05, "betas": (0.8, 0.99), "eps": 0.1}, 150),
             ((1.5, -0.5), {"lr": 0.02, "betas": (0.95, 0.9), "eps": 1.0}, 150),
             ((-0.5, 2.5), {"lr": 0.1, "betas": (0.5, 0.999)}, 100)]
    compare_with_torch(Adam, torch.optim.Adam, cases, {"lr": 0.05, "eps": 0.1}, "Adam", hint,
                       "Keep m and v per parameter tensor, and one step counter t for the whole optimizer.", namespace)


# ---- Part 3 ---------------------------------------------------------------------------

def test_paths_figures(fig_paths, fig_surface, paths) -> None:
    """3.1: each path drawn where the sheet asks, whatever the plotting calls."""
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

    assert isinstance(fig_paths, Figure), "fig_paths should be the matplotlib figure from paths_figure"
    axes = main_axes(fig_paths)
    assert len(axes) == 1, f"fig_paths should have one panel (and its colour bar), not {len(axes)}"
    ax = axes[0]
    labels = " ".join(legend_labels(ax))
    for name, path in paths.items():
        check_curve(ax, np.asarray(path.detach().cpu(), dtype=float), f"the path {name!r} in fig_paths",
                    hint="Draw each path of `paths` itself, from its start to its end.")
        assert name in labels, f"the sheet says: label each path with its name; the legend of fig_paths lacks {name!r}"
    check_point(ax, (1.0, 1.0), "the minimum (1, 1) in fig_paths", hint="paths_figure marks it.")
    assert isinstance(fig_surface, go.Figure), "fig_surface should be the plotly figure from surface_figure"
    drawn = [np.stack([np.asarray(t.x, dtype=float), np.asarray(t.y, dtype=float)], axis=1)
             for t in fig_surface.data if t.type == "scatter3d" and t.x is not None and t.y is not None]
    for name, path in paths.items():
        expected = np.asarray(path.detach().cpu(), dtype=float)
        assert any(d.shape == expected.shape and np.allclose(d, expected, rtol=1e-4, atol=1e-6, equal_nan=True)
                   for d in drawn), (
            f"fig_surface does not show the path {name!r}: pass paths to surface_figure")


# ---- Bonus ----------------------------------------------------------------------------

def _torch_equivalent(name: str, settings: dict):
    makers = {"SGD": lambda params, lr: torch.optim.SGD(params, lr=lr), "Momentum": _torch_momentum,
              "RMSprop": torch.optim.RMSprop, "Adam": torch.optim.Adam}
    return lambda params: makers[name](params, **settings)


def test_bonus_claim(bonus_optimizer, bonus_settings, bonus_steps, student_id: str = "") -> None:
    """The claim, re-run with torch.optim's equivalents of the student's classes, from the student's
    own start point (utils/variant.py; the grader's id wins over the typed one)."""
    mine, default = variant("optimizers", student_id).numbers.bonus_start, DEFAULTS["optimizers"].bonus_start
    if _claim_holds(mine, bonus_optimizer, bonus_settings, bonus_steps):
        return
    failed = (f"with torch.optim's {bonus_optimizer}, from your start point, steps {bonus_steps} to {bonus_steps + 50} "
              "do not all stay within 1e-2 of (1, 1): the claim does not hold")
    if mine != default and _claim_holds(default, bonus_optimizer, bonus_settings, bonus_steps):
        raise AssertionError(f"{failed}. It holds from the default start point: was your search run from there? The "
                             "sheet says: the race starts at your own start point bonus_start, which comes from your "
                             "student id")
    raise AssertionError(failed)


def _claim_holds(xy, name: str, settings: dict, steps: int) -> bool:
    trajectory = run(BANANA, [start(*xy)], _torch_equivalent(name, settings), steps + 50)
    return bool(((trajectory[steps:] - 1.0).norm(dim=1) < 1e-2).all())
