"""hidden_tests.landscape: the reference versions it installs are right, and its fixture bites.

The references replace earlier exercises in the notebook's namespace when it is graded
(``references_before``), so they must pass the very checks students face; the fixture (two
parameter groups, a frozen and an unused parameter) must catch the slips it exists for. In
process and small; mutations/landscape.toml holds the full set of cases, run through the
notebook by the mutation suite.
"""

from __future__ import annotations

import pytest
import torch

from hidden_tests import landscape as hidden


@pytest.mark.parametrize("test, reference", [
    (hidden.test_sgdwm, hidden.ReferenceSGDwM), (hidden.test_nagd, hidden.ReferenceNAGD),
    (hidden.test_sgdwmld, hidden.ReferenceSGDwMLD), (hidden.test_adagrad, hidden.ReferenceAdaGrad),
    (hidden.test_rmsprob, hidden.ReferenceRMSProb), (hidden.test_adam, hidden.ReferenceAdam),
])
def test_reference_optimizers_follow_the_sheet(test, reference, monkeypatch):
    # The references derive from torch.optim classes, which the students' classes may not:
    # the trajectories are what is compared here.
    monkeypatch.setattr(hidden, "check_optimizer_class", lambda cls, name: None)
    test(reference)


def test_reference_functions_pass_their_own_checks():
    hidden.test_training_step(hidden.reference_training_step)
    hidden.test_the_loop(hidden.reference_loop, hidden.reference_evaluate)
    hidden.test_plot_landscape(hidden.reference_plot_landscape)
    hidden.test_swa(hidden.reference_train_with_swa)


def test_references_before_installs_every_earlier_exercise_and_nothing_later(monkeypatch):
    monkeypatch.setenv("COURSE_VARIANTS_OFF", "landscape")  # the default subset: the first 3,200 digits
    namespace = {"train_images": torch.rand(3300, 1, 28, 28), "train_labels": torch.randint(0, 10, (3300,)),
                 "loader_generator": torch.Generator().manual_seed(0), "device": torch.device("cpu"),
                 "the_loop": "the student's"}
    hidden.references_before("1.4", namespace)
    assert namespace["training_step"] is hidden.reference_training_step and namespace["GD"] is hidden.ReferenceGD
    assert namespace["the_loop"] == "the student's", "1.4's own function is left to its test"
    assert len(namespace["mini_batch_loader"]) == 50 and namespace["mini_batch_loader"].generator is \
        namespace["loader_generator"]
    assert abs(namespace["subset_images"].mean().item() - (0.5 - 0.1307) / 0.3081) < 0.05
    assert namespace["get_OneFCNet"]()[1].weight.shape == (10, 784)
    with pytest.raises(ValueError, match="unknown exercise"):
        hidden.references_before("9.9", namespace)


def test_the_reference_subset_is_the_students_own(monkeypatch):
    """Later exercises go on with the subset of the student's own digits (utils/variant.py)."""
    monkeypatch.setenv("COURSE_STUDENT_ID", "alice")
    first = hidden.own_first()
    assert first > 0
    index = torch.arange(8000)
    namespace = {"train_images": index.double().reshape(8000, 1, 1, 1).expand(8000, 1, 28, 28), "train_labels": index,
                 "loader_generator": torch.Generator().manual_seed(0), "device": torch.device("cpu")}
    hidden.references_before("1.1", namespace)
    assert namespace["subset_labels"].tolist() == list(range(first, first + 3200))


class _SelfLR(torch.optim.Optimizer):
    """SGD with momentum that reads its settings from self: right with one group only."""

    def __init__(self, params, lr, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})
        self.lr, self.momentum = lr, momentum

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    v = self.state[p].setdefault("v", torch.zeros_like(p))
                    v.mul_(self.momentum).add_(p.grad)
                    p.sub_(self.lr * v)


class _NoGradCheck(torch.optim.Optimizer):
    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["lr"] * p.grad)


def test_the_fixture_catches_settings_from_self_and_a_missing_grad_check():
    with pytest.raises(AssertionError, match="parameter group"):
        hidden.test_sgdwm(_SelfLR)
    with pytest.raises(AssertionError, match="p.grad is None"):
        hidden.test_gd(_NoGradCheck)


def test_a_loop_that_leaves_gradients_off_is_caught_and_gradients_come_back():
    def evaluate(model, loader, loss_fn):
        torch.set_grad_enabled(False)
        return hidden.reference_evaluate(model, loader, loss_fn)

    with pytest.raises(AssertionError, match="gradients are switched off"):
        hidden.test_evaluate(evaluate)
    assert torch.is_grad_enabled()
