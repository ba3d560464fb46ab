import numpy as np
import pytest
import torch

from utils import rosenbrock as rb


def test_values_and_minimum():
    assert rb.rosenbrock(1.0, 1.0) == 0.0
    assert rb.rosenbrock(0.0, 0.0) == 1.0
    assert rb.rosenbrock(-1.0, 1.0) == 4.0
    assert rb.rosenbrock(2.0, 4.0, a=2.0, b=5.0) == 0.0 and rb.minimum(2.0) == (2.0, 4.0)
    X, Y, Z = rb.grid(n=101)
    assert Z.min() >= 0 and Z.shape == (101, 101)


def test_autograd_matches_the_analytic_gradient():
    xy = torch.tensor([-1.3, 0.7], dtype=torch.float64, requires_grad=True)
    rb.rosenbrock(xy[0], xy[1], a=1.0, b=100.0).backward()
    x, y = -1.3, 0.7
    expected = [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]
    assert torch.allclose(xy.grad, torch.tensor(expected, dtype=torch.float64))


def test_contour_uses_log_colours_and_marks_the_minimum():
    fig, ax = rb.contour()
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
    assert type(ax.collections[0].norm).__name__ == "LogNorm"
    star = [line for line in ax.lines if line.get_marker() == "*"]
    assert len(star) == 1 and tuple(star[0].get_xydata()[0]) == (1.0, 1.0)
    assert len(fig.axes) == 2  # the plot and its colour bar


def test_paths_figure_draws_each_path_from_start_to_end():
    path = [torch.tensor([-2.0, -2.0]), torch.tensor([0.0, 0.5]), torch.tensor([0.9, 0.8])]
    fig, ax = rb.paths_figure({"GD": path, "other": np.array([[0.0, 0.0], [1.0, 1.0]])}, title="t")
    gd = next(line for line in ax.lines if line.get_label() == "GD")
    assert np.allclose(gd.get_xydata(), [[-2, -2], [0, 0.5], [0.9, 0.8]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "GD" in labels and "other" in labels and ax.get_title() == "t"


def test_to_path_rejects_wrong_shapes():
    assert rb.to_path(torch.zeros(5, 2)).shape == (5, 2)
    with pytest.raises(ValueError, match="shape"):
        rb.to_path(np.zeros((5, 3)))


def test_surface_figure_has_surface_paths_and_minimum():
    fig = rb.surface_figure({"p": np.array([[-1.0, -1.0], [1.0, 1.0]])})
    kinds = [trace.type for trace in fig.data]
    assert kinds == ["surface", "scatter3d", "scatter3d"]
    assert np.allclose(fig.data[1].z[-1], 0.0)  # the path ends at the minimum, where f = 0
    assert fig.layout.scene.zaxis.title.text == "log10(1 + f)"


class _Descent:
    def __init__(self, param, lr, copy=True, sign=1.0):
        self.param = np.array(param, dtype=float) if copy else param
        self.lr, self.sign = lr, sign

    def step(self, grad):
        self.param -= self.sign * self.lr * grad


def test_check_descent_step_accepts_a_descent_step_and_names_each_slip():
    from utils.rosenbrock import check_descent_step

    check_descent_step(_Descent, lr=0.1)
    with pytest.raises(AssertionError, match="moved uphill"):
        check_descent_step(_Descent, lr=0.1, sign=-1.0)
    with pytest.raises(AssertionError, match="store a copy"):
        check_descent_step(_Descent, lr=0.1, copy=False)
