"""Hidden tests of the mnist assignment ("Exercise Sheet 4 - Optimization 2").

Each function takes the student's objects and raises AssertionError with a message that
quotes the sheet's rule it checks. They use small synthetic models and data built on the
spot, never the student's training runs, so they are fast and test what they exist to
tell apart: a partial last batch (accuracy over samples, not batches), unequal class
counts (the per-class denominator), a dropout layer (evaluation mode), a model that
records whether gradients were on, and batches that live "in host memory" (`_OnHost`)
so that code which forgets to move them to the model's device fails even on a grader
without a GPU.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data._utils.collate import default_collate

from utils.checks import check_close

# ----------------------------------------------------------------------------- simulated devices


class _SimulatedDevice(torch.Tensor):
    """Tensors of a simulated two-device world (host memory vs. the model's accelerator).

    ``.to(device)``/``.cuda()`` moves a tensor to the model's device (``_OnDevice``),
    ``.cpu()``/``.to("cpu")`` to host memory (``_OnHost``); see ``_moved_to``. An operation that mixes a host tensor with a
    tensor on the device (or with a model parameter) raises the error PyTorch raises on a
    GPU. Scalars (0-dim tensors) mix freely, as CPU scalars do with CUDA tensors.
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.cpu):
            with torch._C.DisableTorchFunctionSubclass():
                out = func(*args, **kwargs)
            return out.as_subclass(_moved_to(func, args, kwargs))
        with torch._C.DisableTorchFunctionSubclass():
            every = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            tensors = [t for t in every if t.dim() > 0]
            if any(isinstance(t, _OnHost) for t in tensors) and any(
                    isinstance(t, (_OnDevice, nn.Parameter)) for t in tensors):
                raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                                   "cuda:0 and cpu! (simulated by the grader)")
            out = func(*args, **kwargs)
        # The result lives where the computation ran: on the device if any operand was there.
        target = _OnDevice if any(isinstance(t, (_OnDevice, nn.Parameter)) for t in every) else _OnHost
        return torch.utils._pytree.tree_map_only(
            torch.Tensor, lambda t: t if isinstance(t, nn.Parameter) else t.as_subclass(target), out)


class _OnHost(_SimulatedDevice):
    pass


def _moved_to(func, args, kwargs) -> type:
    """Where ``.cpu()``, ``.cuda()`` or ``.to(...)`` puts a tensor in the simulated world.

    The grader's own device is the CPU, so ``.to(device)`` cannot be told from a move back
    to the host by its value. The spelling tells: ``.to("cpu")`` (a string) and ``.cpu()``
    go to the host, ``.to(device)`` (a torch.device, the notebook's variable) and ``.cuda()``
    to the model's device, ``.to(other)`` to where ``other`` is, and a dtype alone stays put.
    """
    if func is torch.Tensor.cpu:
        return _OnHost
    if func is torch.Tensor.cuda:
        return _OnDevice
    self, rest = args[0], list(args[1:])
    target = kwargs.get("device", rest[0] if rest else kwargs.get("other"))
    if isinstance(target, torch.Tensor):
        return type(target) if isinstance(target, _SimulatedDevice) else _OnDevice
    if isinstance(target, str):
        return _OnHost if target.split(":")[0] == "cpu" else _OnDevice
    if isinstance(target, torch.device):
        return _OnDevice
    return type(self) if isinstance(self, _SimulatedDevice) else _OnHost  # .to(dtype), .to(copy=True)


class _OnDevice(_SimulatedDevice):
    pass


def _plain(value):
    return value.as_subclass(torch.Tensor) if isinstance(value, torch.Tensor) else value


def _host_loader(x, y, batch_size, shuffle=False):
    """A DataLoader whose batches are in host memory, as the course's DataLoaders give them."""
    def collate(batch):
        return tuple(t.as_subclass(_OnHost) for t in default_collate(batch))
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, collate_fn=collate)


def _device_rule(exc: Exception, where: str) -> AssertionError:
    if "same device" in str(exc):
        return AssertionError(
            f"{where} mixes tensors of two devices. The sheet's rule: work on the model's device; move "
            "every batch and its labels there (batch.to(device), labels.to(device)) before using them")
    return AssertionError(f"{where} raised {type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------- Task 1a, 1b


def _linear_chain(model, dims):
    """The model's weights and biases in layer order, matched by shape (None if they do not fit)."""
    params = list(model.parameters())
    weights = [p for p in params if p.dim() == 2]
    biases = [p for p in params if p.dim() == 1]
    chain = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        w = next((p for p in weights if tuple(p.shape) == (d_out, d_in)), None)
        b = next((p for p in biases if tuple(p.shape) == (d_out,)), None)
        if w is None or b is None:
            return None
        weights.remove(w)
        biases.remove(b)
        chain.append((w, b))
    return chain


def _reference_forward(chain, x, relu_last=False):
    out = x.flatten(1)
    for i, (w, b) in enumerate(chain):
        out = out @ w.T + b
        if i < len(chain) - 1 or relu_last:
            out = out.relu()
    return out


def test_simple_mlp(SimpleMLP):
    """SimpleMLP(dims): any depth, every layer registered, ReLU between layers and none after the last."""
    for dims in ([784, 32, 10], [6, 5, 4, 3], [3, 2], [12, 9, 7, 5, 4, 2], [28 * 28, 32, 32, 32, 10]):
        torch.manual_seed(len(dims))
        model = SimpleMLP(list(dims))
        assert isinstance(model, nn.Module), "SimpleMLP should be a subclass of nn.Module"
        n_layers = len(dims) - 1
        n_params = len(list(model.parameters()))
        if n_params == 0:
            raise AssertionError(
                f"SimpleMLP({dims}) has no parameters that PyTorch can see. The sheet's rule: every layer must "
                "be an nn.Module attribute (or in an nn.ModuleList), not in a plain Python list")
        assert n_params == 2 * n_layers, (
            f"SimpleMLP({dims}) should have {n_layers} linear layers (a weight and a bias each), but model.parameters() "
            f"yields {n_params} tensors. The sheet's rule: one layer per pair of consecutive sizes in dims, for any "
            "number of layers (no hard-coded depth), each registered (nn.ModuleList, not a Python list)")
        chain = _linear_chain(model, dims)
        assert chain is not None, (
            f"the parameter shapes of SimpleMLP({dims}) do not form layers {dims[0]} -> ... -> {dims[-1]}: "
            "layer i maps dims[i] features to dims[i + 1]")
        state = model.state_dict()
        assert len(state) == 2 * n_layers, (
            "state_dict() should hold every weight and bias. The sheet's rule: register every layer "
            "(nn.ModuleList or nn.Sequential), so that saving the model saves all of it")
        x = torch.randn(5, 1, 1, dims[0])
        with torch.no_grad():
            out = model(x)
            expected = _reference_forward(chain, x)
            relu_last = _reference_forward(chain, x, relu_last=True)
        assert isinstance(out, torch.Tensor) and tuple(out.shape) == (5, dims[-1]), (
            f"SimpleMLP({dims}) should map a batch of shape (5, 1, 1, {dims[0]}) to shape (5, {dims[-1]}): "
            "flatten the input first, as SimpleFixedMLP does")
        if torch.allclose(out, relu_last, atol=1e-6) and not torch.allclose(out, expected, atol=1e-6):
            raise AssertionError(
                "SimpleMLP applies ReLU after its last layer. The sheet's rule: ReLU between the layers, none "
                "after the last (the output scores must be able to be negative)")
        check_close(out, expected, f"the output of SimpleMLP({dims})", atol=1e-5,
                    hint="Each layer is a Linear followed by ReLU, except the last, which has no activation.")


_SHEET_DIMS = [28 * 28, 32, 32, 32, 10]


def _shapes(model):
    return [tuple(p.shape) for p in model.parameters()]


def test_three_models(model1, model2, model3, SimpleFixedMLP, SimpleMLP):
    """Task 1b: three models of one structure, built in three ways."""
    assert isinstance(model1, SimpleFixedMLP), "model1 should be a SimpleFixedMLP"
    assert isinstance(model2, SimpleMLP), "model2 should be a SimpleMLP"
    assert isinstance(model3, nn.Sequential), "model3 should be an nn.Sequential"
    assert len({id(model1), id(model2), id(model3)}) == 3, "model1, model2 and model3 should be three separate models"
    expected = _shapes(SimpleFixedMLP())
    for name, model in (("model2", model2), ("model3", model3)):
        assert _shapes(model) == expected, (
            f"the parameter shapes of {name} differ from those of model1 (SimpleFixedMLP). The sheet's rule: all "
            "three models have the same structure, layers of sizes 784 -> 32 -> 32 -> 32 -> 10")
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        for name, model in (("model2", model2), ("model3", model3)):
            chain = _linear_chain(model, _SHEET_DIMS)
            check_close(model(x), _reference_forward(chain, x), f"the output of {name}", atol=1e-5,
                        hint="ReLU after every layer but the last, as in SimpleFixedMLP; flatten the input first.")


# ----------------------------------------------------------------------------- Task 2a


def _reference_train(model, loader, optimizer, loss_fn, n_epochs):
    losses = []
    for _ in range(n_epochs):
        for x, y in loader:
            x, y = _plain(x), _plain(y)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def _train_setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(22, 3, 2, 2, generator=g)  # 22 samples, batch 4: a last batch of 2
    y = torch.randint(0, 5, (22,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 5))
    return x, y, model


def test_train(train):
    """Task 2a: the loss of every iteration, as Python floats, the loop in the right order."""
    x, y, model = _train_setup()
    reference_model = copy.deepcopy(model)
    reference = _reference_train(reference_model, DataLoader(TensorDataset(x, y), batch_size=4),
                                 torch.optim.SGD(reference_model.parameters(), lr=0.1, momentum=0.5),
                                 nn.CrossEntropyLoss(), 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    try:
        losses = train(model, _host_loader(x, y, 4), optimizer, nn.CrossEntropyLoss(), 2)
    except RuntimeError as exc:
        raise _device_rule(exc, "train") from None
    assert isinstance(losses, list), f"train should return a list of losses, not a {type(losses).__name__}"
    if any(isinstance(v, torch.Tensor) for v in losses):
        kept_graph = any(isinstance(v, torch.Tensor) and v.requires_grad for v in losses)
        raise AssertionError(
            "train returns tensors. The sheet's rule: the losses are Python floats (loss.item())"
            + (", and keeping the tensors also keeps every iteration's graph in memory" if kept_graph else ""))
    assert len(losses) == len(reference), (
        "train should return one loss per iteration, for every epoch: with 2 epochs of 6 batches, 12 losses "
        "(create the list once, before the loop over epochs, and append inside the loop over batches)")
    assert all(isinstance(v, (float, int)) and not isinstance(v, bool) for v in losses), (
        "the losses should be Python floats (loss.item())")
    # The sheet's loop: zero_grad, forward, loss, backward, step. A missing or misplaced zero_grad
    # changes the parameters from the second step on.
    check_close(losses, reference, "the losses returned by train", rtol=1e-4, atol=1e-6,
                hint="Each iteration: optimizer.zero_grad() before loss.backward(), then optimizer.step(); "
                     "append loss.item() of that iteration.")
    for p, q in zip(model.parameters(), reference_model.parameters()):
        check_close(p.detach(), q.detach(), "the parameters after train", rtol=1e-4, atol=1e-6,
                    hint="train should update the model with optimizer.step() on every batch.")


# ----------------------------------------------------------------------------- Task 2b


def test_training_runs(models, optimizers, all_losses, SimpleMLP, n_batches):
    """Task 2b: several SimpleMLP([784, 32, 10]), one Adam(lr=0.04) each, one epoch each."""
    assert isinstance(models, list) and len(models) >= 2, "models should be a list of several models"
    assert len(optimizers) == len(models), "optimizers should hold one optimizer per model"
    assert len(all_losses) == len(models), "all_losses should hold one list of losses per model"
    assert len({id(m) for m in models}) == len(models), "every entry of models should be a model of its own"
    for i, (model, optimizer, losses) in enumerate(zip(models, optimizers, all_losses)):
        assert isinstance(model, SimpleMLP), f"models[{i}] should be a SimpleMLP"
        assert _shapes(model) == [(32, 784), (32,), (10, 32), (10,)], f"models[{i}] should be SimpleMLP([784, 32, 10])"
        assert isinstance(optimizer, torch.optim.Adam), f"optimizers[{i}] should be a torch.optim.Adam"
        assert math.isclose(optimizer.param_groups[0]["lr"], 0.04), f"optimizers[{i}] should have lr=0.04"
        own = {id(p) for p in model.parameters()}
        bound = {id(p) for group in optimizer.param_groups for p in group["params"]}
        assert bound == own, f"optimizers[{i}] should optimize the parameters of models[{i}], and only those"
        assert len(losses) == n_batches, (
            f"all_losses[{i}] should hold one loss per batch of one epoch ({n_batches}), not {len(losses)}")
    first = [p.detach() for p in models[0].parameters()]
    assert not all(torch.equal(a, b.detach()) for a, b in zip(first, models[1].parameters())), (
        "models[0] and models[1] have identical parameters: create each model separately")


def _smoothed(losses, window=25):
    values = np.asarray([float(v) for v in losses], dtype=float)
    return np.convolve(values, np.ones(window) / window, mode="valid")


def _drawn_ys(ax):
    """The y data of everything drawn in a panel: lines and the offsets of collections."""
    drawn = [np.asarray(line.get_ydata(), dtype=float) for line in ax.lines]
    drawn += [np.asarray(c.get_offsets(), dtype=float)[:, 1] for c in ax.collections if len(c.get_offsets())]
    return drawn


def test_loss_figure(fig, all_losses, window=25):
    """Task 2b's plot: every model's losses, smoothed by a moving average of 25, labelled."""
    from utils.checks import check_figure

    check_figure(fig, "fig_losses", n_axes=1)
    ax = fig.axes[0]
    drawn = _drawn_ys(ax)
    for i, losses in enumerate(all_losses):
        curve = _smoothed(losses, window)
        assert any(len(d) == len(curve) and np.allclose(d, curve, rtol=1e-5, atol=1e-6, equal_nan=True)
                   for d in drawn), (
            f"fig_losses does not show the losses of model {i + 1} smoothed by a moving average of {window} "
            f"(np.convolve(losses, np.ones({window}) / {window}, mode='valid'))")
    legend = ax.get_legend()
    assert legend is not None and len(legend.get_texts()) >= len(all_losses), (
        "fig_losses needs a legend with one entry per model")


# ----------------------------------------------------------------------------- Task 3a, 3b


class _RecordsGrad(nn.Module):
    def __init__(self):
        super().__init__()
        self.grad_enabled = []

    def forward(self, x):
        self.grad_enabled.append(torch.is_grad_enabled())
        return x


def _eval_setup():
    """A model with known predictions behind a dropout layer, and its data.

    25 samples in batches of 4 (a last batch of 1); all ten classes, in unequal numbers;
    the model predicts the largest input, which is wrong for 8 of the samples, and more
    often predicts some classes than others.
    """
    generator = torch.Generator().manual_seed(3)
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4, 4, 4, 5, 6, 6, 7, 7, 7, 8, 9, 9, 9])
    labels = labels[torch.randperm(25, generator=generator)]
    predicted = labels.clone()
    wrong = torch.tensor([0, 3, 4, 9, 10, 16, 17, 24])
    predicted[wrong] = torch.tensor([4, 4, 4, 0, 2, 9, 4, 7])
    predicted[wrong] = torch.where(predicted[wrong] == labels[wrong], (labels[wrong] + 1) % 10, predicted[wrong])
    x = torch.rand(25, 10, generator=generator) * 0.5
    x[torch.arange(25), predicted] += 1.0
    recorder = _RecordsGrad()
    model = nn.Sequential(nn.Dropout(0.9), recorder, nn.Linear(10, 10))
    with torch.no_grad():
        model[2].weight.copy_(torch.eye(10))
        model[2].bias.zero_()
    model.train()
    return x, labels, model, recorder


def _evaluation_rules(model, recorder, name):
    assert recorder.grad_enabled and not any(recorder.grad_enabled), (
        f"{name} runs the model with gradients on. The sheet's rule: evaluate without tracking gradients "
        "(with torch.no_grad(): or torch.inference_mode())")


def _call_eval(func, name, model, loader):
    try:
        return func(model, loader)
    except RuntimeError as exc:
        if "same device" in str(exc):
            raise _device_rule(exc, name) from None
        raise


def test_compute_accuracy(compute_accuracy):
    """Task 3a: correct predictions over all samples, in eval mode, without gradients."""
    x, labels, model, recorder = _eval_setup()
    model_snapshot = copy.deepcopy(model.state_dict())
    accuracy = _call_eval(compute_accuracy, "compute_accuracy", model, _host_loader(x, labels, 4))
    assert not isinstance(accuracy, torch.Tensor), "compute_accuracy should return a Python float, not a tensor"
    assert isinstance(accuracy, (float, int)) and not isinstance(accuracy, bool), (
        f"compute_accuracy should return a float, not a {type(accuracy).__name__}")
    expected = (x.argmax(1) == labels).float().mean().item()
    per_batch = np.mean([(x[i:i + 4].argmax(1) == labels[i:i + 4]).float().mean().item() for i in range(0, 25, 4)])
    if math.isclose(accuracy, per_batch, abs_tol=1e-6) and not math.isclose(accuracy, expected, abs_tol=1e-6):
        raise AssertionError(
            "compute_accuracy averages over batches. The sheet's rule: correctly classified samples divided by the "
            "number of samples (the last batch can be smaller)")
    if not math.isclose(accuracy, expected, abs_tol=1e-6):
        raise AssertionError(
            "compute_accuracy is not correct: the model must be in evaluation mode (model.eval(), so dropout is "
            "off), the prediction is the class with the largest output, and accuracy = correctly classified "
            "samples / number of samples")
    _evaluation_rules(model, recorder, "compute_accuracy")
    for key, value in model.state_dict().items():
        assert torch.equal(value, model_snapshot[key]), "compute_accuracy must not change the model's parameters"


def test_compute_accuracy_per_class(compute_accuracy_per_class):
    """Task 3b: {class: accuracy} for 0..9, each over the samples of that class."""
    x, labels, model, recorder = _eval_setup()
    result = _call_eval(compute_accuracy_per_class, "compute_accuracy_per_class", model, _host_loader(x, labels, 4))
    assert isinstance(result, dict), f"compute_accuracy_per_class should return a dict, not a {type(result).__name__}"
    assert sorted(result, key=repr) == sorted(range(10), key=repr) and all(type(k) is int for k in result), (
        "the keys should be the ten classes as Python ints 0, 1, ..., 9")
    predictions = x.argmax(1)
    for digit in range(10):
        value = result[digit]
        assert not isinstance(value, torch.Tensor), f"the accuracy of class {digit} should be a float, not a tensor"
        members = labels == digit
        expected = (predictions[members] == digit).float().mean().item()
        assert isinstance(value, (float, int)) and math.isclose(value, expected, abs_tol=1e-6), (
            f"the accuracy of class {digit} is not correct. The sheet's rule: correctly classified samples of "
            "class i divided by the number of samples of class i (the true label, not the prediction); the "
            "model in evaluation mode (model.eval())")
    _evaluation_rules(model, recorder, "compute_accuracy_per_class")


def test_bar_chart(fig, per_class_accuracies):
    """The grouped bar chart: ten bars per model, the heights of its per-class accuracies, a legend."""
    from utils.checks import check_figure

    check_figure(fig, "fig_bars", n_axes=1)
    ax = fig.axes[0]
    # Each bar as (centre on the x-axis, height); digit d's group sits around x = d.
    bars = [(p.get_x() + p.get_width() / 2, float(p.get_height())) for p in ax.patches]
    for i, accuracies in enumerate(per_class_accuracies):
        assert isinstance(accuracies, dict) and all(d in accuracies for d in range(10)), (
            f"per_class_accuracies[{i}] should be the dict of compute_accuracy_per_class, with the keys 0 to 9")
        for digit in range(10):
            wanted = float(accuracies[digit])
            assert any(abs(x - digit) < 0.5 and math.isclose(h, wanted, rel_tol=1e-6, abs_tol=1e-9)
                       for x, h in bars), (
                f"fig_bars lacks the bar of model {i + 1} for digit {digit}: draw one bar per digit and model, "
                "as high as that model's accuracy on that digit, in the group around x = digit")
    assert len(ax.patches) >= 10 * len(per_class_accuracies), "fig_bars should have ten bars per model"
    legend = ax.get_legend()
    assert legend is not None and len(legend.get_texts()) >= len(per_class_accuracies), (
        "fig_bars needs a legend with one entry per model")
