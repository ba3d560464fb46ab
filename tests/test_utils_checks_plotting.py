import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from utils.checks import check_close, check_figure, check_number, check_optimizer_step, check_tensor
from utils.plotting import as_numpy, plot_curves


def test_check_tensor():
    check_tensor(torch.zeros(2, 3), "w", shape=(2, 3))
    with pytest.raises(AssertionError, match="w should be a torch.Tensor, but it is a list"):
        check_tensor([1.0], "w")
    with pytest.raises(AssertionError, match=r"shape \(3, 2\), but has shape \(2, 3\)"):
        check_tensor(torch.zeros(2, 3), "w", shape=(3, 2))
    with pytest.raises(AssertionError, match="NaN or inf"):
        check_tensor(torch.tensor([1.0, float("nan")]), "w")


def test_check_close_accepts_equal_values_in_any_container():
    check_close(torch.tensor([[1.0], [2.0]]), [1.0, 2.0], "w")  # (2, 1) against (2,) is fine
    check_close(np.array([1.0, 2.0 + 1e-9]), torch.tensor([1.0, 2.0]), "w")
    check_close(3.0, 3.0, "x")
    check_close([float("nan"), 1.0], [float("nan"), 1.0], "curve")


def test_check_close_rejects_wrong_values_with_the_hint():
    with pytest.raises(AssertionError, match="w is not correct. Check the sign"):
        check_close([1.0, 2.0], [1.0, -2.0], "w", hint="Check the sign.")
    with pytest.raises(AssertionError, match=r"should have shape \(3,\)"):
        check_close([1.0, 2.0], [1.0, 2.0, 3.0], "w")
    with pytest.raises(AssertionError, match="should be a tensor"):
        check_close("abc", [1.0], "w")


def test_check_number():
    assert check_number(torch.tensor(2.5, requires_grad=True), "x") == 2.5
    assert check_number(np.float32(1.5), "x") == 1.5
    for bad, message in [(torch.ones(2), "single number"), ("1", "should be a number"),
                         (True, "should be a number"), (float("inf"), "is inf")]:
        with pytest.raises(AssertionError, match=message):
            check_number(bad, "x")


def test_check_figure():
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([1, 2])
    a.set(xlabel="x", ylabel="y")
    with pytest.raises(AssertionError, match="panel 1 of fig is empty"):
        check_figure(fig, "fig", n_axes=2)
    b.plot([2, 1])
    with pytest.raises(AssertionError, match="panel 1 of fig needs labels"):
        check_figure(fig, "fig")
    b.set(xlabel="x", ylabel="y")
    check_figure(fig, "fig", n_axes=2)
    with pytest.raises(AssertionError, match="should have 1 panel"):
        check_figure(fig, "fig", n_axes=1)
    with pytest.raises(AssertionError, match="matplotlib Figure"):
        check_figure(a, "fig")
    plt.close(fig)


def test_plot_curves_labels_legend_and_log_scale():
    losses = torch.tensor([4.0, 2.0, 1.0], requires_grad=True) * 1  # non-leaf with grad
    fig, ax = plot_curves({"a": losses, "b": [3.0, 1.5, 0.5]}, "update", "loss", title="t", logy=True)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), ax.get_yscale()) == ("update", "loss", "t", "log")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert np.allclose(ax.lines[0].get_ydata(), [4.0, 2.0, 1.0])
    _, ax1 = plot_curves({"only": [1, 2]}, "x", "y")
    assert ax1.get_legend() is None and ax1.get_yscale() == "linear"
    plt.close("all")


def test_as_numpy():
    assert as_numpy([torch.tensor(1.0), 2]).tolist() == [1.0, 2.0]
    assert as_numpy(torch.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]


def test_check_optimizer_step_accepts_a_right_step_and_names_the_wrong_ones():
    class Step:
        def __init__(self, params, lr, sign=1.0, rebind=False):
            self.params, self.lr, self.sign, self.rebind = params, lr, sign, rebind

        def step(self):
            for p in self.params:
                if self.rebind:
                    p = p - self.lr * p.grad  # noqa: F841 - the classic slip: a new tensor
                else:
                    with torch.no_grad():
                        p -= self.sign * self.lr * p.grad

    start, grad = torch.tensor([0.5, -1.0]), torch.tensor([2.0, -4.0])
    check_optimizer_step(lambda ps: Step(ps, 0.1), start, grad, [0.3, -0.6], "one step")
    with pytest.raises(AssertionError, match="one step is not correct. Mind the sign"):
        check_optimizer_step(lambda ps: Step(ps, 0.1, sign=-1.0), start, grad, [0.3, -0.6], "one step",
                             hint="Mind the sign.")
    with pytest.raises(AssertionError, match="one step is not correct"):
        check_optimizer_step(lambda ps: Step(ps, 0.1, rebind=True), start, grad, [0.3, -0.6], "one step")
    assert start.tolist() == [0.5, -1.0], "the check must not change the start it was given"
