"""hidden_tests.mnist judges functions, not runs: reference code passes, typical mistakes fail.

In-process and small (the synthetic data of the hidden tests); mutations/mnist.toml holds
the full set of cases, run through the notebook by the mutation suite.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hidden_tests import mnist as hidden


class SimpleMLP(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


def train(model, dataloader, optimizer, loss_fn, n_epochs=1):
    device = next(model.parameters()).device
    losses = []
    for _ in range(n_epochs):
        for x, y in dataloader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def compute_accuracy(model, dataloader, move_labels=True, evaluate=True, no_grad=True, per_batch=False):
    device = next(model.parameters()).device
    if evaluate:
        model.eval()
    correct, batches = 0, []
    with torch.set_grad_enabled(not no_grad):
        for x, y in dataloader:
            hits = (model(x.to(device)).argmax(1) == (y.to(device) if move_labels else y))
            correct += hits.sum().item()
            batches.append(hits.float().mean().item())
    return sum(batches) / len(batches) if per_batch else correct / len(dataloader.dataset)


def per_class(model, dataloader, by_prediction=False):
    device = next(model.parameters()).device
    model.eval()
    hits, counts = [0] * 10, [0] * 10
    with torch.no_grad():
        for x, y in dataloader:
            guesses = model(x.to(device)).argmax(1).cpu().tolist()
            for label, guess in zip(y.cpu().tolist(), guesses):
                counts[guess if by_prediction else label] += 1
                hits[label] += label == guess
    return {c: hits[c] / counts[c] if counts[c] else 0.0 for c in range(10)}


def test_reference_implementations_pass():
    hidden.test_simple_mlp(SimpleMLP)
    hidden.test_train(train)
    hidden.test_compute_accuracy(compute_accuracy)
    hidden.test_compute_accuracy_per_class(per_class)


class ReluLast(SimpleMLP):
    def forward(self, x):
        return torch.relu(super().forward(x))


class PlainList(SimpleMLP):
    def __init__(self, dims):
        nn.Module.__init__(self)
        self.layers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]


@pytest.mark.parametrize("cls, message", [(ReluLast, "ReLU after its last layer"),
                                          (PlainList, "not in a plain Python list")])
def test_simple_mlp_mistakes_are_named(cls, message):
    with pytest.raises(AssertionError, match=message):
        hidden.test_simple_mlp(cls)


def test_a_failed_test_puts_the_reference_in_the_notebook_and_a_passed_one_does_not():
    namespace = {"SimpleMLP": PlainList}
    with pytest.raises(AssertionError, match="not in a plain Python list"):
        hidden.test_simple_mlp(PlainList, namespace=namespace)
    assert namespace["SimpleMLP"] is hidden.Reference.SimpleMLP
    namespace = {"SimpleMLP": SimpleMLP}
    hidden.test_simple_mlp(SimpleMLP, namespace=namespace)
    assert namespace["SimpleMLP"] is SimpleMLP


def test_gradients_switched_off_for_the_session_fail_and_are_switched_back_on():
    def grad_off(model, dataloader):
        torch.set_grad_enabled(False)
        return compute_accuracy(model, dataloader)

    namespace = {}
    try:
        with pytest.raises(AssertionError, match="switched gradients off"):
            hidden.test_compute_accuracy(grad_off, namespace=namespace)
        assert torch.is_grad_enabled()
        assert namespace["compute_accuracy"] is hidden.Reference.compute_accuracy
    finally:
        torch.set_grad_enabled(True)


def test_train_mistakes_fail():
    def tensors(*args, **kwargs):
        return [torch.tensor(v, requires_grad=True) for v in train(*args, **kwargs)]

    def not_moved(model, dataloader, optimizer, loss_fn, n_epochs=1):
        losses = []
        for _ in range(n_epochs):
            for x, y in dataloader:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        return losses

    with pytest.raises(AssertionError, match="Python floats"):
        hidden.test_train(tensors)
    with pytest.raises(AssertionError, match="model's device"):
        hidden.test_train(not_moved)


@pytest.mark.parametrize("options, message", [
    ({"move_labels": False}, "two devices"), ({"evaluate": False}, "evaluation mode"),
    ({"no_grad": False}, "without tracking gradients"), ({"per_batch": True}, "averages over batches")])
def test_accuracy_mistakes_are_named(options, message):
    with pytest.raises(AssertionError, match=message):
        hidden.test_compute_accuracy(lambda model, loader: compute_accuracy(model, loader, **options))


def test_per_class_denominator_is_checked():
    with pytest.raises(AssertionError, match="samples of class i"):
        hidden.test_compute_accuracy_per_class(lambda m, l: per_class(m, l, by_prediction=True))


def test_simulated_devices_behave_like_two_devices():
    host = torch.ones(3).as_subclass(hidden._OnHost)
    on_device = host.to(torch.device("cpu"))  # the notebook's `device` is a torch.device
    assert isinstance(on_device, hidden._OnDevice) and isinstance(on_device.cpu(), hidden._OnHost)
    assert isinstance(on_device.to("cpu"), hidden._OnHost) and isinstance(host.to(on_device), hidden._OnDevice)
    assert isinstance(on_device.to(torch.float64), hidden._OnDevice)
    assert torch.equal((host + host).as_subclass(torch.Tensor), torch.full((3,), 2.0))
    with pytest.raises(RuntimeError, match="same device"):
        host + on_device
    with pytest.raises(RuntimeError, match="same device"):
        nn.Linear(3, 2)(host)
    assert (on_device.sum() + host.sum()).item() == 6.0  # scalars mix, as CPU scalars do with CUDA tensors
