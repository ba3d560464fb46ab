"""Hidden tests of the autodiff assignment: one function per graded test cell.

Each function takes the student's objects (functions, values, figures) and raises
AssertionError with a message that quotes the sheet's rule and says what to look at; the
messages hold no expected numbers (they would give answers away in the feedback).

How they judge:

* Part 1 asks for functions that differentiate *any* function handed to them, "with
  autograd". The tests hand them functions built on ``_Traced``, an autograd.Function whose
  derivative no hand formula knows and whose backward counts its calls: a derivative
  written by hand or by finite differences never calls it and fails with the sheet's rule.
* Part 2 runs the student's training functions on fixed, unshuffled slices of ``X, y``
  next to a float64 reference (``torch.optim.SGD``, which with dampening 0 is exactly the
  sheet's update), run outside the student's call; while the student's function runs,
  ``torch.optim`` is watched, because the sheet says to write the update yourself.
* Later exercises never depend on the student's earlier functions: 2.3 and 2.5 build their
  own loaders from ``X, y``; 2.4 is judged on the student's own ``history`` and
  ``best_epoch``, so a slip in 2.3 costs 2.3 only. Figures are checked against the values
  the student plotted (their own), looked up among everything drawn in the panel.
* One slip, one cell, in the notebook too: a test whose exercise later cells build on takes
  ``namespace=globals()`` (and the notebook's names through ``globals().get``, so that a cell
  that raised still reaches it); when it fails, it puts the ``Reference`` version and the
  results the notebook made from it (``sig``, the run of 2.1, the split, ``best_epoch``) in the
  notebook before it raises, so the figures and runs after it go on with correct ones.

What each function needs: the names in its signature, as the notebook defines them.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from hidden_tests.common import (call, check_defined, check_detached, check_floats, fallback, is_float,
                                 no_optimizer_created)
from utils.checks import check_close, check_figure, check_tensor
from utils.figures import check_curve, legend_labels, main_axes
from utils.seed import seed_everything
from utils.variant import DEFAULTS, variant

# The settings the sheet states for the run of 2.3 (tests/test_assignment_data.py checks
# that with them the best-validation epoch is not the last, and that neighbouring epochs
# differ in test error by far more than the tolerance of test_last_and_best).
RUN_2_3 = {"lr": 0.05, "epochs": 30, "batch_size": 32}
AUTOGRAD_RULE = "the sheet says: use autograd for the derivative (backward() or torch.autograd.grad)"
NO_OPTIM_RULE = "the sheet says: do not use torch.optim here, write the update yourself"


# ---------------------------------------------------------------------------------------
# Helpers


class _Traced(torch.autograd.Function):
    """t -> sin(3t) + t^3/3 elementwise, with a hand-written backward that counts its calls.

    The backward is built from differentiable operations, so second derivatives
    (create_graph=True, torch.func) work through it."""

    calls = 0
    generate_vmap_rule = True

    @staticmethod
    def forward(t):
        return torch.sin(3 * t) + t**3 / 3

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved_tensors
        _Traced.calls += 1
        return grad * (3 * torch.cos(3 * t) + t**2)


def _g(t):
    return _Traced.apply(t)


def _g0(t):  # _g without autograd, for expected values
    return torch.sin(3 * t) + t**3 / 3


def _g1(t):  # the first derivative of _g
    return 3 * torch.cos(3 * t) + t**2


def _g2(t):  # the second derivative of _g
    return -9 * torch.sin(3 * t) + 2 * t


@contextlib.contextmanager
def _autograd_used(name: str):
    """Fail with the sheet's rule unless ``_Traced``'s backward ran inside the block."""
    before = _Traced.calls
    yield
    assert _Traced.calls > before, (
        f"{AUTOGRAD_RULE}. {name} did not differentiate the function it was given with autograd: "
        "a derivative written by hand (or by finite differences) is right for one function only")


def _no_torch_optim(name: str):
    """Fail with the sheet's rule if a torch.optim optimizer is created inside the block."""
    return no_optimizer_created(f"{NO_OPTIM_RULE}: {name} created torch.optim.{{name}}")


def _call(function, name: str, *args):
    """Call the student's function; an exception becomes advice instead of a bare traceback."""
    return call(f"{name}, called by the tests with other inputs,", function, *args)


def _pair(result, name: str, what: str):
    ok = isinstance(result, (tuple, list)) and len(result) == 2
    assert ok, f"{name} should return two values ({what}), but returned a {type(result).__name__}"
    return result


def _loader(X, y, n: int, batch_size: int, offset: int) -> DataLoader:
    # No shuffling, so the student's run and the reference see the same batches.
    return DataLoader(TensorDataset(X[offset:offset + n], y[offset:offset + n]), batch_size=batch_size)


def _reference_sgd(loader, n_features, lr, epochs, momentum=0.0):
    """float64 reference: (w, b, losses of every update, [(w, b) after every epoch])."""
    device = next(iter(loader))[0].device
    w = torch.zeros(n_features, 1, device=device, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, device=device, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=lr, momentum=momentum)
    losses, epochs_end = [], []
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = ((xb.double() @ w + b - yb.double()) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        epochs_end.append((w.detach().clone(), b.detach().clone()))
    return w.detach(), b.detach(), losses, epochs_end


def _mse(X, y, w, b) -> float:
    w = torch.as_tensor(w).detach().double().reshape(-1, 1).to(X.device)
    b = torch.as_tensor(b).detach().double().reshape(-1).to(X.device)
    return ((X.double() @ w + b - y.double()) ** 2).mean().item()


def _check_training_run(result, name, n_features, device, reference, hint):
    """The (w, b, losses) of a student's training function against the reference run."""
    w_ref, b_ref, losses_ref, _ = reference
    w, b, losses = _triple(result, name)
    losses = check_floats(losses, f"the losses of {name}", "the loss (a Python float) of every update")
    assert len(losses) == len(losses_ref), (
        f"the sheet says: losses holds the loss of every update, in order; {name} returned a list of "
        "another length: one entry per mini-batch of every epoch")
    check_close(losses, losses_ref, f"the losses of {name}", hint=hint)
    check_tensor(w, f"w returned by {name}", shape=(n_features, 1))
    assert isinstance(b, torch.Tensor) and b.numel() == 1, f"b returned by {name} should be a tensor holding one number"
    check_detached(w, f"w returned by {name}", "return w, b (detached)")
    check_detached(b, f"b returned by {name}", "return w, b (detached)")
    assert w.device.type == device.type, f"the sheet says: w and b on `device`; {name} returned w on {w.device}"
    check_close(w, w_ref, f"w returned by {name}", hint=hint)
    check_close(b.reshape(-1), b_ref, f"b returned by {name}", hint=hint)


def _triple(result, name):
    ok = isinstance(result, (tuple, list)) and len(result) == 3
    assert ok, f"{name} should return w, b, losses (three values), but returned a {type(result).__name__}"
    return result


def _panels_left_to_right(fig) -> list:
    return sorted(main_axes(fig), key=lambda ax: ax.get_position().x0)


# ---------------------------------------------------------------------------------------
# References, put in place of a student's function whose test failed


def _fit(loader, n_features, lr, epochs, momentum=None, after_epoch=None):
    """The sheet's training loop: w, b from zeros on the loader's device, the own update (with the
    momentum buffers of 2.5 when ``momentum`` is given), the loss of every update."""
    device = loader.dataset[0][0].device
    w = torch.zeros(n_features, 1, device=device, requires_grad=True)
    b = torch.zeros(1, device=device, requires_grad=True)
    buffers, losses = {}, []
    for _ in range(epochs):
        for xb, yb in loader:
            loss = ((xb @ w + b - yb) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                for name, param in (("w", w), ("b", b)):
                    step = param.grad.clone()
                    if momentum is not None and name in buffers:
                        step = momentum * buffers[name] + param.grad
                    buffers[name] = step
                    param -= lr * step
                    param.grad.zero_()
            losses.append(loss.item())
        if after_epoch is not None:
            after_epoch(w, b, losses)
    return w.detach(), b.detach(), losses


class Reference:
    """The sheet's solutions, under the names the notebook uses."""

    @staticmethod
    def values_and_derivatives(fn, x):
        x = x.detach().clone().requires_grad_(True)
        values = fn(x)
        values.sum().backward()
        return values.detach(), x.grad.detach()

    @staticmethod
    def train_sgd(loader, n_features, lr, epochs):
        return _fit(loader, n_features, lr, epochs)

    @staticmethod
    def train_with_validation(train_loader, X_val, y_val, n_features, lr, epochs):
        train_losses, val_losses, history, seen = [], [], [], [0]

        def after_epoch(w, b, losses):
            train_losses.append(sum(losses[seen[0]:]) / (len(losses) - seen[0]))
            seen[0] = len(losses)
            with torch.no_grad():
                val_losses.append(((X_val @ w + b - y_val) ** 2).mean().item())
            history.append((w.detach().clone(), b.detach().clone()))

        _fit(train_loader, n_features, lr, epochs, after_epoch=after_epoch)
        return train_losses, val_losses, history

    @staticmethod
    def train_momentum(loader, n_features, lr, epochs, momentum):
        return _fit(loader, n_features, lr, epochs, momentum=momentum)


def _sheet_run_2_1(X, y) -> dict:
    """The run of 2.1 with the reference train_sgd, as the notebook's cell makes it."""
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True, generator=seed_everything(0))
    w, b, losses = Reference.train_sgd(loader, n_features=X.shape[1], lr=0.01, epochs=10)
    return {"train_sgd": Reference.train_sgd, "loader": loader, "w": w, "b": b, "losses": losses}


def _sheet_split(X, y) -> dict:
    from sklearn.model_selection import train_test_split

    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.2, random_state=42)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=42)
    return {"X_train": X_train, "X_rest": X_rest, "y_train": y_train, "y_rest": y_rest, "X_val": X_val,
            "X_test": X_test, "y_val": y_val, "y_test": y_test}


# ---------------------------------------------------------------------------------------
# Part 1


def test_derivative_at_point(x, dfdx, student_id: str = "") -> None:
    """1.1: f'(point) for f(x) = 2 / ((5 - x)^2 + 4) at the student's own point (utils/variant.py;
    the grader's id wins over the typed one), read from x.grad after f.backward()."""
    point, default = variant("autodiff", student_id).numbers.point, DEFAULTS["autodiff"].point
    rule = ("the sheet says: make x a tensor holding your point (point, from your student id) with "
            "requires_grad=True, call f.backward() and read x.grad")
    assert isinstance(x, torch.Tensor) and x.requires_grad and x.numel() == 1, f"{rule}; x is not such a tensor"
    held = float(x.detach())
    if held != point and held == default:
        raise AssertionError(f"{rule}; x holds the default point, not your own point")
    assert held == point, f"{rule}; x does not hold your point"
    assert x.grad is not None, f"{rule}; x.grad is None: the derivative did not come from f.backward()"
    check_close(dfdx, x.grad, "dfdx", hint="Store the value of x.grad in dfdx.")
    check_close(dfdx, 4 * (5 - point) / ((5 - point) ** 2 + 4) ** 2, "dfdx",
                hint="Differentiate f at your point; compare with the chain rule on paper.")


def test_values_and_derivatives(values_and_derivatives, sig, dsig, x, namespace=None) -> None:
    """1.2 (values): values_and_derivatives(fn, x) on the sigmoid and on other functions."""
    repair = lambda: dict(zip(("values_and_derivatives", "sig", "dsig"),  # noqa: E731
                              (Reference.values_and_derivatives, *Reference.values_and_derivatives(torch.sigmoid, x))))
    with fallback(namespace, repair):
        for value, name in ((values_and_derivatives, "values_and_derivatives"), (sig, "sig"), (dsig, "dsig")):
            check_defined(value, name, "1.2")
        _check_values_and_derivatives(values_and_derivatives, sig, dsig, x)


def _check_values_and_derivatives(values_and_derivatives, sig, dsig, x) -> None:
    s = torch.sigmoid(x.detach().double())
    check_close(sig, s, "sig", hint="sig holds the sigmoid at every point of the grid x.")
    check_close(dsig, s * (1 - s), "dsig", hint="dsig holds the sigmoid's derivative at every point of x.")
    rule = "return the values and the derivatives, both detached"
    for grid in (torch.linspace(-2.0, 2.0, 41), torch.tensor([0.3, -1.1, 2.5, 0.0]), torch.tensor([0.7])):
        with _autograd_used("values_and_derivatives"):
            values, derivatives = _pair(_call(values_and_derivatives, "values_and_derivatives", _g, grid.clone()),
                                        "values_and_derivatives", "the values and the derivatives")
        for tensor, what in ((values, "the values"), (derivatives, "the derivatives")):
            check_detached(tensor, f"{what} returned by values_and_derivatives", rule)
        hint = "Use the function fn you are given, not the sigmoid, and the gradient of the sum of fn(x)."
        check_close(values, _g0(grid.double()),
                    "the values returned by values_and_derivatives for another function", hint=hint)
        check_close(derivatives, _g1(grid.double()),
                    "the derivatives returned by values_and_derivatives for another function", hint=hint)


def test_sigmoid_figure(fig_sigmoid, x, sig, dsig) -> None:
    """1.2 (figure): sigma against x in the left panel, sigma' against x in the right one."""
    check_figure(fig_sigmoid, "fig_sigmoid", n_axes=2)
    left, right = _panels_left_to_right(fig_sigmoid)
    grid = x.detach().double().cpu().numpy()
    check_curve(left, np.stack([grid, torch.as_tensor(sig).detach().double().cpu().numpy()], axis=1),
                "sig against x in the left panel", hint="The sheet says: sigma in the left panel, plotted over x.",
                atol=1e-5)
    check_curve(right, np.stack([grid, torch.as_tensor(dsig).detach().double().cpu().numpy()], axis=1),
                "dsig against x in the right panel", hint="The sheet says: sigma' in the right panel, plotted over x.",
                atol=1e-5)


def test_jacobian(compute_jacobian, jacobian) -> None:
    """1.3: compute_jacobian(f, x, y) on the sheet's f and on functions whose derivative only autograd knows."""
    x0, y0 = 1.376, 2.123
    hint = "Are the gradients of the first component still in x.grad and y.grad?"
    check_tensor(jacobian, "jacobian", shape=(2, 2))
    check_close(jacobian[0], [2 * x0, 2 * y0], "the first row of jacobian")
    assert not torch.equal(torch.as_tensor(jacobian[1]), torch.as_tensor(jacobian[0])), (
        "the second row of jacobian repeats the first: the sheet says one row per component, "
        "row i the gradient of component i")
    check_close(jacobian[1], [4 * x0 * y0**2, 4 * x0**2 * y0], "the second row of jacobian", hint=hint)

    def other(x, y):
        return torch.stack([_g(x) * y, x + _g(y) ** 2])

    for a, c in ((0.4, -0.7), (-1.2, 0.9)):
        x = torch.tensor(a, requires_grad=True)
        y = torch.tensor(c, requires_grad=True)
        with _autograd_used("compute_jacobian"):
            result = _call(compute_jacobian, "compute_jacobian", other, x, y)
        check_tensor(result, "the result of compute_jacobian for another function", shape=(2, 2))
        ta, tc = torch.tensor(a, dtype=torch.float64), torch.tensor(c, dtype=torch.float64)
        expected = torch.tensor([[float(_g1(ta) * tc), float(_g0(ta))],
                                 [1.0, float(2 * _g0(tc) * _g1(tc))]], dtype=torch.float64)
        check_close(result, expected, "the result of compute_jacobian for another function",
                    hint="Row i holds the gradient of component i of f; reset the gradients between components.")


def test_matrix_gradient(matrix_gradient, grad_trace) -> None:
    """1.4: grad_trace = d tr(A @ A) / dA at the sheet's A, and matrix_gradient on other functions."""
    check_tensor(grad_trace, "grad_trace", shape=(2, 2))
    check_close(grad_trace, [[2.0, 6.0], [4.0, 8.0]], "grad_trace",
                hint="A^2 is the matrix product A @ A; A ** 2 squares each entry.")
    for M in (torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]), torch.tensor([[0.1, 0.9], [-0.4, 1.3]])):
        with _autograd_used("matrix_gradient"):
            result = _call(matrix_gradient, "matrix_gradient", lambda A: _g(A).sum(), M.clone())
        check_tensor(result, "the result of matrix_gradient for another function", shape=tuple(M.shape))
        check_close(result, _g1(M.double()), "the result of matrix_gradient for another function",
                    hint="Differentiate the number fn(A) with respect to every entry of A.")


def test_derivatives_at(derivatives_at, first_derivative, second_derivative, student_id: str = "") -> None:
    """1.5: derivatives_at(fn, x0) -> two Python floats, on the sigmoid at the student's own point
    (utils/variant.py) and on other functions."""
    rule = "the sheet says: return fn'(x0) and fn''(x0) as Python floats"
    for value, name in ((first_derivative, "first_derivative"), (second_derivative, "second_derivative")):
        assert is_float(value), f"{rule}; {name} is a {type(value).__name__}: use .item()"
    point, default = variant("autodiff", student_id).numbers.sigmoid_point, DEFAULTS["autodiff"].sigmoid_point
    s0 = torch.sigmoid(torch.tensor(default, dtype=torch.float64))
    if point != default and math.isclose(first_derivative, float(s0 * (1 - s0)), rel_tol=1e-4):
        raise AssertionError("the sheet says: compute the sigmoid's derivatives at your own point sigmoid_point, "
                             "which comes from your student id; first_derivative is the one at the default point")
    s = torch.sigmoid(torch.tensor(point, dtype=torch.float64))
    check_close(first_derivative, s * (1 - s), "first_derivative", hint="At your own point, sigmoid_point.")
    check_close(second_derivative, s * (1 - s) * (1 - 2 * s), "second_derivative",
                hint="Differentiate the first derivative, computed with create_graph=True.")
    for x0 in (0.6, -1.3):
        with _autograd_used("derivatives_at"):
            first, second = _pair(_call(derivatives_at, "derivatives_at", _g, x0), "derivatives_at",
                                  "the first and the second derivative")
        assert is_float(first) and is_float(second), f"{rule}; derivatives_at returned a {type(first).__name__}"
        t = torch.tensor(x0, dtype=torch.float64)
        check_close(first, _g1(t), "the first derivative from derivatives_at for another function",
                    hint="Use the function fn you are given.")
        check_close(second, _g2(t), "the second derivative from derivatives_at for another function",
                    hint="Differentiate the first derivative, computed with create_graph=True; "
                    "backward() adds to x.grad, so a second backward() on it adds the two derivatives.")


# ---------------------------------------------------------------------------------------
# Part 2


def test_train_sgd(train_sgd, X, y, w, b, losses, n_batches: int, namespace=None) -> None:
    """2.1: train_sgd against the reference on three configurations, and the sheet's run."""
    with fallback(namespace, lambda: _sheet_run_2_1(X, y)):
        for value, name in ((train_sgd, "train_sgd"), (w, "w"), (b, "b"), (losses, "losses")):
            check_defined(value, name, "2.1")
        _check_train_sgd(train_sgd, X, y, w, b, losses, n_batches)


def _check_train_sgd(train_sgd, X, y, w, b, losses, n_batches: int) -> None:
    hint = "Are the gradients reset after every update, and is the update w - lr * grad?"
    for n, batch, lr, epochs, offset in ((200, 32, 0.01, 2, 0), (50, 7, 0.05, 3, 300), (64, 64, 0.1, 4, 600)):
        loader = _loader(X, y, n, batch, offset)
        reference = _reference_sgd(loader, X.shape[1], lr, epochs)
        with _no_torch_optim("train_sgd"):
            result = _call(train_sgd, "train_sgd", loader, X.shape[1], lr, epochs)
        _check_training_run(result, "train_sgd", X.shape[1], X.device, reference, hint)
    check_floats(losses, "losses", "the loss (a Python float) of every update")
    assert len(losses) == 10 * n_batches, "the sheet says: one loss per update, 10 epochs of every mini-batch"
    check_close(w, [[2.0], [-3.4], [1.7]], "w after 10 epochs", atol=0.1, rtol=0)
    check_close(b.reshape(-1), [4.2], "b after 10 epochs", atol=0.1, rtol=0)


def test_learning_curve(fig_curve, losses) -> None:
    """2.2: the loss of every update, drawn in the one panel (any way), on a log y-axis."""
    check_figure(fig_curve, "fig_curve", n_axes=1)
    (ax,) = main_axes(fig_curve)
    assert ax.get_yscale() == "log", "the sheet says: a logarithmic y-axis (ax.set_yscale('log'))"
    check_curve(ax, [float(v) for v in losses], "the loss of every update (the list losses)",
                hint="Plot losses against the update number: one point per update, not per epoch.", rtol=1e-5)


def test_split(X, y, X_train, X_val, X_test, y_train, y_val, y_test, namespace=None) -> None:
    """2.3 (split): exactly the sheet's two calls of train_test_split."""
    with fallback(namespace, lambda: _sheet_split(X, y)):
        _check_split(X, y, X_train, X_val, X_test, y_train, y_val, y_test)


def _check_split(X, y, X_train, X_val, X_test, y_train, y_val, y_test) -> None:
    reference = _sheet_split(X, y)
    hint = "Split as described: 80/20 first, then the 20 % in halves, random_state=42 both times, in that order."
    for name, mine in (("X_train", X_train), ("y_train", y_train), ("X_val", X_val), ("y_val", y_val),
                       ("X_test", X_test), ("y_test", y_test)):
        check_defined(mine, name, "2.3")
        ref = reference[name]
        assert isinstance(mine, torch.Tensor) and mine.dtype == ref.dtype, (
            f"{name} should be a tensor like X and y (train_test_split keeps tensors as they are)")
        check_close(mine, ref, name, rtol=0, atol=0, hint=hint)


def test_train_with_validation(train_with_validation, X, y, namespace=None) -> None:
    """2.3 (training): per-epoch losses and parameter copies against the reference, on other data."""
    with fallback(namespace, {"train_with_validation": Reference.train_with_validation}):
        check_defined(train_with_validation, "train_with_validation", "2.3")
        _check_train_with_validation(train_with_validation, X, y)


def _check_train_with_validation(train_with_validation, X, y) -> None:
    float_rule = "train_losses and val_losses hold one Python float per epoch"
    copy_rule = "a copy of the parameters, (w, b), detached and cloned"
    hint = "Record after every epoch: the mean of its batch losses, the validation MSE, and (w, b) cloned."
    X_val, y_val = X[900:950], y[900:950]
    for n, batch, lr, epochs, offset in ((96, 32, 0.01, 4, 0), (70, 20, 0.05, 3, 400)):
        loader = _loader(X, y, n, batch, offset)
        _, _, batch_losses, after_epoch = _reference_sgd(loader, X.shape[1], lr, epochs)
        with _no_torch_optim("train_with_validation"):
            result = _call(train_with_validation, "train_with_validation", loader, X_val, y_val, X.shape[1], lr, epochs)
        ok = isinstance(result, (tuple, list)) and len(result) == 3
        assert ok, "train_with_validation should return train_losses, val_losses, history (three lists)"
        tr, va, hist = result
        tr = check_floats(tr, "the training losses", float_rule)
        va = check_floats(va, "the validation losses", float_rule)
        assert len(tr) == len(va) == len(hist) == epochs, "the sheet says: each list has one entry per epoch"
        per_epoch = len(loader)
        expected_tr = [sum(batch_losses[e * per_epoch:(e + 1) * per_epoch]) / per_epoch for e in range(epochs)]
        check_close(tr, expected_tr, "the training losses of train_with_validation", hint=hint)
        check_close(va, [_mse(X_val, y_val, w, b) for w, b in after_epoch],
                    "the validation losses of train_with_validation", hint=hint)
        for entry, (w_ref, b_ref) in zip(hist, after_epoch):
            ok = isinstance(entry, (tuple, list)) and len(entry) == 2
            assert ok, f"the sheet says: history holds {copy_rule}; an entry is not a pair (w, b)"
            for tensor, name, ref in ((entry[0], "w", w_ref), (entry[1], "b", b_ref)):
                assert isinstance(tensor, torch.Tensor), (
                    f"the sheet says: {copy_rule}, kept as tensors; the {name} saved in history is a "
                    f"{type(tensor).__name__}")
                assert tensor.dtype == X.dtype, (
                    f"the sheet says: {copy_rule}, kept in the parameter's own dtype; the {name} saved in history "
                    f"is {tensor.dtype}")
                assert not tensor.requires_grad and tensor.grad_fn is None, (
                    f"the sheet says: {copy_rule}; the {name} saved in history still tracks gradients")
                check_close(tensor.reshape(ref.shape), ref, f"the {name} saved in history", hint=hint)
        assert hist[0][0].data_ptr() != hist[-1][0].data_ptr(), (
            f"the sheet says: {copy_rule}; history holds the same tensor for every epoch")


def test_best_epoch(train_losses, val_losses, history, best_epoch, namespace=None) -> None:
    """2.3 (best epoch): the sheet's run has 30 epochs of Python floats; best_epoch is argmin, an int."""
    with fallback(namespace, lambda: {"best_epoch": int(np.argmin([float(v) for v in val_losses]))}):
        check_defined(best_epoch, "best_epoch", "2.3")
        _check_best_epoch(train_losses, val_losses, history, best_epoch)


def _check_best_epoch(train_losses, val_losses, history, best_epoch) -> None:
    float_rule = "train_losses and val_losses hold one Python float per epoch"
    n_epochs = RUN_2_3["epochs"]
    for name, values in (("train_losses", train_losses), ("val_losses", val_losses), ("history", history)):
        assert isinstance(values, (list, tuple)) and len(values) == n_epochs, (
            f"the sheet says: one entry per epoch in {name}, for the sheet's run")
    check_floats(train_losses, "train_losses", float_rule)
    check_floats(val_losses, "val_losses", float_rule)
    assert isinstance(best_epoch, (int, np.integer)) and not isinstance(best_epoch, bool), (
        "the sheet says: best_epoch is the (0-based) index of the epoch, as an int")
    assert best_epoch == int(np.argmin(val_losses)), (
        "the sheet says: best_epoch is the (0-based) index of the epoch with the lowest validation loss")


def test_last_and_best(history, best_epoch, X_test, y_test, test_mse_last, test_mse_best) -> None:
    """2.4: the test MSE of history[-1] and history[best_epoch], as Python floats.

    Judged on the student's own history and best_epoch (a slip in 2.3 costs 2.3 only); with
    the sheet's settings the best epoch is not the last, and neighbouring epochs differ in
    test MSE by far more than the tolerance."""
    rule = "the sheet says: store both as Python floats"
    for value, name in ((test_mse_last, "test_mse_last"), (test_mse_best, "test_mse_best")):
        assert is_float(value), f"{rule}; {name} is a {type(value).__name__}: use .item()"
    ok = isinstance(history, (list, tuple)) and len(history) > 0 and isinstance(best_epoch, (int, np.integer))
    assert ok and -len(history) <= best_epoch < len(history), (
        "history and best_epoch should come from 2.3: a list of (w, b) per epoch and an index into it")
    check_close(test_mse_last, _mse(X_test, y_test, *history[-1]), "test_mse_last",
                hint="Use the last entry of history (after the last epoch) and X_test, y_test.")
    check_close(test_mse_best, _mse(X_test, y_test, *history[best_epoch]), "test_mse_best",
                hint="Use history[best_epoch] (the epoch itself, not its neighbour) and X_test, y_test.")


def test_train_momentum(train_momentum, X, y, namespace=None) -> None:
    """2.5: train_momentum against torch.optim.SGD(momentum=mu, dampening=0) on three configurations."""
    with fallback(namespace, {"train_momentum": Reference.train_momentum}):
        check_defined(train_momentum, "train_momentum", "2.5")
        _check_train_momentum(train_momentum, X, y)


def _check_train_momentum(train_momentum, X, y) -> None:
    hint = ("The sheet's update: v_0 = g_0, v_t = momentum * v_(t-1) + g_t (no (1 - momentum) factor), "
            "one buffer for w and one for b.")
    for mu, batch, n, offset in ((0.5, 32, 200, 100), (0.9, 10, 60, 100), (0.0, 25, 100, 100), (0.7, 16, 48, 500)):
        loader = _loader(X, y, n, batch, offset)
        reference = _reference_sgd(loader, X.shape[1], 0.01, 3, momentum=mu)
        with _no_torch_optim("train_momentum"):
            result = _call(train_momentum, "train_momentum", loader, X.shape[1], 0.01, 3, mu)
        _check_training_run(result, f"train_momentum (momentum {mu})", X.shape[1], X.device, reference, hint)


def test_momentum_figure(fig_momentum, momentum_losses) -> None:
    """2.5 (figure): the four learning curves in one panel, with a legend."""
    check_figure(fig_momentum, "fig_momentum", n_axes=1)
    (ax,) = main_axes(fig_momentum)
    assert isinstance(momentum_losses, dict) and len(momentum_losses) == 4, "run the four momentum values"
    for label, values in momentum_losses.items():
        finite = [float(v) for v in values]
        if not all(math.isfinite(v) for v in finite):
            continue  # a diverging run cannot be drawn in full; the values test judges it
        check_curve(ax, finite, f"the curve of {label}", hint="Plot every run's loss of every update.", rtol=1e-5)
    assert len(legend_labels(ax)) >= 4, "the sheet says: a legend that names the momentum of each curve"


def test_momentum_choice(momentum_answer) -> None:
    """2.5 (choice)."""
    assert momentum_answer == "B", "that statement does not match the curves: look at momentum 0.99 again"
