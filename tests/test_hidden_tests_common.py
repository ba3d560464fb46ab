"""hidden_tests.common: the shared helpers tell apart what they exist to tell apart.

In-process and small; the assignments' mutation suites prove them again through the notebooks.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from hidden_tests import common

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# ---- the fixture of two parameter groups, a frozen parameter and several shapes ----------------

class _Adam(torch.optim.Optimizer):
    """Adam as a student writes it; ``slip`` names one of the mistakes the fixture must show."""

    def __init__(self, params, lr=0.1, betas=(0.9, 0.999), eps=1e-8, slip=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        self.slip, self.t = slip, 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        for group in self.param_groups:
            if self.slip == "counter per group" and group is not self.param_groups[0]:
                self.t += 1
            settings = self.defaults if self.slip == "settings from defaults" else group
            beta1, beta2 = settings["betas"]
            for p in group["params"]:
                if p.grad is None and self.slip != "no grad check":
                    continue
                state = self.state[p]
                m = state["m"] = beta1 * state.get("m", torch.zeros_like(p)) + (1 - beta1) * p.grad
                v = state["v"] = beta2 * state.get("v", torch.zeros_like(p)) + (1 - beta2) * p.grad ** 2
                m_hat, v_hat = m / (1 - beta1 ** self.t), v / (1 - beta2 ** self.t)
                p -= settings["lr"] * m_hat / (v_hat.sqrt() + settings["eps"])


def _run(make_optimizer, steps=6):
    model = common.fixture_model(seed=2)
    g = torch.Generator().manual_seed(3)
    data = [(torch.randn(8, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (8,), generator=g))
            for _ in range(steps)]
    groups = common.two_groups(model, lr=0.03, betas=(0.5, 0.9))
    loss = lambda k: nn.functional.cross_entropy(model(data[k][0]), data[k][1])  # noqa: E731
    rows, _ = common.trajectory(make_optimizer, groups, loss, steps)
    return rows


def test_the_fixture_shows_every_slip_of_an_optimizer_next_to_its_twin():
    twin = _run(lambda groups: torch.optim.Adam(groups, lr=0.1))
    common.compare_trajectories(_run(lambda groups: _Adam(groups)), twin, "a correct Adam", hint="")
    for slip in ("settings from defaults", "counter per group"):
        with pytest.raises(AssertionError):
            common.compare_trajectories(_run(lambda groups, s=slip: _Adam(groups, slip=s)), twin, slip, hint="")
    with pytest.raises(TypeError):  # the frozen parameter's gradient is None
        _run(lambda groups: _Adam(groups, slip="no grad check"))
    model = common.fixture_model()
    assert {tuple(p.shape) for p in model.parameters()} == {(2, 3, 2), (3, 6), (3,), (4,)}
    assert [p.requires_grad for p in model.parameters()].count(False) == 1


# ---- rules on values and classes ---------------------------------------------------------------

def test_value_rules_quote_the_rule_and_catch_the_slip():
    assert common.check_floats([1.0, np.float64(2.0)], "losses", "floats") == [1.0, 2.0]
    with pytest.raises(AssertionError, match="the sheet says: floats. losses holds a Tensor"):
        common.check_floats([torch.tensor(1.0)], "losses", "floats")
    with pytest.raises(AssertionError, match="still tracks gradients"):
        common.check_detached(torch.ones(2, requires_grad=True) * 2, "w", "detach it")
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(AssertionError, match="is a torch.optim.adamw.AdamW, not a torch.optim.adam.Adam itself"):
        common.check_exact_class(torch.optim.AdamW(params), torch.optim.Adam, "optimizers[0]", "Adam")
    common.check_exact_class(torch.optim.Adam(params), torch.optim.Adam, "optimizers[0]", "Adam")


def test_a_saved_state_must_be_a_detached_copy_with_every_buffer():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    common.check_state_copy({k: v.detach().clone() for k, v in model.state_dict().items()}, model, "states[0]", "copy")
    with pytest.raises(AssertionError, match="shares memory with the model"):
        common.check_state_copy(model.state_dict(), model, "states[0]", "copy")
    with pytest.raises(AssertionError, match="buffers included"):
        common.check_state_copy({k: v.clone() for k, v in model.named_parameters()}, model, "states[0]", "copy")
    with pytest.raises(AssertionError, match="still tracks gradients"):
        common.check_state_copy({k: v.clone() for k, v in model.state_dict(keep_vars=True).items()}, model,
                                "states[0]", "copy")


# ---- the student's code: fallback and spies ---------------------------------------------------

def test_a_failing_test_leaves_the_reference_in_the_notebook():
    namespace = {"train": "broken"}
    with pytest.raises(AssertionError):
        with common.fallback(namespace, lambda: {"train": "reference", "losses": [1.0]}):
            raise AssertionError("the test failed")
    assert namespace == {"train": "reference", "losses": [1.0]}
    with common.fallback(namespace, {"train": "other"}):
        pass
    assert namespace["train"] == "reference"


def test_steps_are_counted_per_optimizer_and_per_model():
    a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    mine, other = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(a.parameters(), lr=0.1)
    with common.optimizer_steps() as steps:
        for optimizer in (mine, mine, other, torch.optim.Adam(b.parameters())):
            optimizer.step()
    assert (steps.by(mine), steps.others(mine), steps.on(a), steps.on(b)) == (2, 2, 3, 1)
    with pytest.raises(AssertionError, match="made a torch.optim.SGD"):
        with common.no_optimizer_created("made a torch.optim.{name}"):
            torch.optim.SGD(a.parameters(), lr=0.1)


def test_gradients_switched_off_for_the_session_fail_and_come_back_on():
    torch.set_grad_enabled(False)
    try:
        with pytest.raises(AssertionError, match="Task 2a switched gradients off for the whole session"):
            common.check_gradients_on("Task 2a")
        assert torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)
    common.check_gradients_on("Task 2a")


# ---- figure data ---------------------------------------------------------------------------------

def test_curves_bars_legends_and_titles_are_read_however_drawn():
    fig, ax = plt.subplots()
    values = np.arange(30, dtype=float)
    padded = np.concatenate([np.full(4, np.nan), values])
    (line,) = ax.plot(padded, color="C1", label="model 1")  # NaN-padded: the same curve
    ax.bar([0.8, 1.8], [0.5, 0.7], 0.3, color="C2", label="model 2")
    fig.legend()
    fig.suptitle("the title")
    assert common.curves(ax, values) == [line] and not common.curves(ax, values + 1)
    entries = common.legend_entries(ax)
    assert [e.text for e in entries] == ["model 1", "model 2"]
    assert entries[0].style == common.style_of(line)
    drawn = common.bars(ax)
    assert np.allclose([(b.x, b.height) for b in drawn], [(0.8, 0.5), (1.8, 0.7)])
    assert [b.label for b in drawn] == ["model 2", "model 2"]
    assert entries[1].style == drawn[0].style and math.isclose(drawn[0].width, 0.3)
    assert common.titles(fig) == ["the title"]
    plt.close(fig)
