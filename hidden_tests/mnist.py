"""Hidden tests of the mnist assignment (source/mnist/mnist.ipynb).

Each function takes the student's objects and raises AssertionError with a message that
quotes the sheet's rule it checks. Functions are judged on small synthetic models and data
built on the spot, so the tests are fast and test what they exist to tell apart: a partial
last batch (accuracy over samples, not batches), unequal class counts (the per-class
denominator), a dropout layer (evaluation mode), a model that records whether gradients were
on, and batches that live "in host memory" (``_OnHost``) so that code which forgets to move
them to the model's device fails even on a grader without a GPU. Their loaders are DataLoaders
over a real dataset, so ``len(dataloader.dataset)`` and a loader built from it work as in the
notebook.

One slip costs one cell:

* the test of a function that later cells use (``SimpleMLP``, ``train``, ``compute_accuracy``,
  ``compute_accuracy_per_class``) takes ``namespace=globals()``; when it fails it puts the
  ``Reference`` version in the notebook under the same name before it raises, so the student's
  later cells (the six runs, the accuracies of the bar chart) go on with a correct one; the
  notebook runs the hidden checks before the visible ones, so this happens whatever fails,
  and computes the accuracies of all six models only after the tests of 3a and 3b;
* the test of the six runs (2b) does the same for ``models``, ``optimizers`` and
  ``all_losses`` (a reference run, made only then), so the figures are drawn from runs that
  exist; and the runs are judged from what training leaves behind (``Adam``'s state per
  parameter and the last loss, recomputed from it), never by training again;
* every test first checks that gradients are still on, and switches them back on if the code
  before it switched them off for the whole session.

The figures are judged against the student's own numbers, by what they show: every model's
curve or bars, in a style of its own that a legend entry (of the panel or of the figure)
names; the loss curves smoothed over the student's own window (utils/variant.py: the one
number of this sheet that depends on the student; the grader's id wins over the typed one).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data._utils.collate import default_collate

from hidden_tests.common import (bars, check_exact_class, check_floats, check_gradients_on, curves, fallback,
                                 legend_entries, no_optimizer_created, optimizer_steps, single_thread, style_of)
from utils.checks import check_close, check_figure
from utils.figures import main_axes
from utils.variant import DEFAULTS, variant

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


# ----------------------------------------------------------------------------- references


class Reference:
    """The sheet's solutions, under the names the notebook uses; put in place of a student's
    function whose test failed (``fallback``)."""

    class SimpleMLP(nn.Module):
        # The solution's modules, in its order: a model made with either has the same parameters
        # and attributes (the mutation suite then sees that the cells after it compute the same).
        def __init__(self, dims):
            super().__init__()
            self.flatten = nn.Flatten()
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.activation = nn.ReLU()

        def forward(self, input):
            out = self.flatten(input)
            for layer in self.layers[:-1]:
                out = self.activation(layer(out))
            return self.layers[-1](out)

    @staticmethod
    def train(model, dataloader, optimizer, loss_fn, n_epochs=1):
        where = next(model.parameters()).device
        losses = []
        for _ in range(n_epochs):
            for images, labels in dataloader:
                images, labels = _plain(images).to(where), _plain(labels).to(where)
                optimizer.zero_grad()
                loss = loss_fn(model(images), labels)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        return losses

    @staticmethod
    def compute_accuracy(model, dataloader):
        where = next(model.parameters()).device
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in dataloader:
                predictions = model(_plain(images).to(where)).argmax(dim=1)
                correct += (predictions == _plain(labels).to(where)).sum().item()
                total += len(labels)
        return correct / total

    @staticmethod
    def compute_accuracy_per_class(model, dataloader):
        where = next(model.parameters()).device
        model.eval()
        correct, total = [0] * 10, [0] * 10
        with torch.no_grad():
            for images, labels in dataloader:
                predictions = model(_plain(images).to(where)).argmax(dim=1).cpu().tolist()
                for label, prediction in zip(_plain(labels).cpu().tolist(), predictions):
                    total[label] += 1
                    correct[label] += label == prediction
        return {digit: correct[digit] / total[digit] if total[digit] else float("nan") for digit in range(10)}


SHEET = {"batch_size": 32, "dims": [28 * 28, 32, 10], "n_models": 6, "lr": 0.04}


def _sheet_batches(train_set, device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The training split as the sheet's loader gives it: all images and labels on ``device``, and
    the number of batches of 32 (unshuffled)."""
    from utils.mnist import as_tensors

    images, labels = as_tensors(train_set, device)
    return images, labels, math.ceil(len(images) / SHEET["batch_size"])


def reference_runs(train_set, device) -> dict:
    """Six models trained as the sheet says (put in place of the student's when 2b's test fails, so
    that the figures after it are drawn from runs that exist)."""
    from utils.mnist import TensorLoader

    images, labels, _ = _sheet_batches(train_set, device)
    loader = TensorLoader(images, labels, batch_size=SHEET["batch_size"])
    models = [Reference.SimpleMLP(SHEET["dims"]).to(device) for _ in range(SHEET["n_models"])]
    optimizers = [torch.optim.Adam(model.parameters(), lr=SHEET["lr"]) for model in models]
    all_losses = [Reference.train(model, loader, optimizer, nn.CrossEntropyLoss())
                  for model, optimizer in zip(models, optimizers)]
    return {"models": models, "optimizers": optimizers, "all_losses": all_losses}


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


def test_simple_mlp(SimpleMLP, namespace=None):
    """SimpleMLP(dims): any depth, every layer registered, ReLU between layers and none after the last."""
    check_gradients_on("the code of Task 1a")
    with fallback(namespace, {"SimpleMLP": Reference.SimpleMLP}):
        for dims in ([784, 32, 10], [6, 5, 4, 3], [3, 2], [12, 9, 7, 5, 4, 2], [28 * 28, 32, 32, 32, 10]):
            torch.manual_seed(len(dims))
            model = SimpleMLP(list(dims))
            check_gradients_on("SimpleMLP(dims)")
            _check_mlp(model, dims)


def _check_mlp(model, dims):
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
    assert len(model.state_dict()) == 2 * n_layers, (
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
_SEQUENTIAL_PARTS = (nn.Sequential, nn.Flatten, nn.Linear, nn.ReLU)


def _shapes(model):
    return [tuple(p.shape) for p in model.parameters()]


def _shared(models) -> bool:
    """True if two of the models hold the same parameter tensor (a layer built once, used twice)."""
    seen = [{id(p) for p in model.parameters()} for model in models]
    return any(seen[i] & seen[j] for i in range(len(seen)) for j in range(i + 1, len(seen)))


def test_three_models(model1, model2, model3, SimpleFixedMLP, SimpleMLP):
    """Task 1b: three models of one structure, built in three ways, from layers of their own."""
    check_gradients_on("the code of Task 1b")
    rule = "model1 a SimpleFixedMLP, model2 a SimpleMLP, model3 an nn.Sequential"
    for name, model, cls in (("model1", model1, SimpleFixedMLP), ("model2", model2, SimpleMLP),
                             ("model3", model3, nn.Sequential)):
        check_exact_class(model, cls, name, rule)
    assert len({id(model1), id(model2), id(model3)}) == 3, "model1, model2 and model3 should be three separate models"
    assert not _shared((model1, model2, model3)), (
        "two of model1, model2 and model3 share a layer: the sheet's rule: three separate models, each with "
        "layers (and random parameters) of its own")
    other = next((type(m).__name__ for m in model3.modules() if not isinstance(m, _SEQUENTIAL_PARTS)), None)
    assert other is None, (
        f"model3 holds a {other}. The sheet's rule: model3 is an nn.Sequential of nn.Flatten(), nn.Linear and "
        "nn.ReLU modules, not a wrapper around another model")
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


class _Counted:
    """A loader that counts how often it is iterated (the epochs a train function ran over it)."""

    def __init__(self, loader):
        self.loader, self.dataset, self.passes = loader, loader.dataset, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.passes += 1
        return iter(self.loader)


def _train_setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(22, 3, 2, 2, generator=g)  # 22 samples, batch 4: a last batch of 2
    y = torch.randint(0, 5, (22,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 5))
    return x, y, model


def _run_train(train, model, loader, optimizer, **kwargs):
    """The student's train under the spies: (losses, steps, loader)."""
    loader = _Counted(loader)
    try:
        with no_optimizer_created("train creates a torch.optim.{name} of its own. The sheet's rule: train makes "
                                  "its steps with the optimizer it is given"), optimizer_steps() as steps:
            losses = train(model, loader, optimizer, nn.CrossEntropyLoss(), **kwargs)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - an error of the student's code becomes advice
        raise _device_rule(exc, "train") from None
    check_gradients_on("train")
    return losses, steps, loader


@single_thread
def test_train(train, namespace=None):
    """Task 2a: the loss of every iteration, as Python floats, the loop in the right order, with the
    optimizer and the loader it is given, one epoch by default."""
    check_gradients_on("the code of Task 2a")
    with fallback(namespace, {"train": Reference.train}):
        _check_train(train)


def _check_train(train):
    x, y, model = _train_setup()
    reference_model = copy.deepcopy(model)
    reference = Reference.train(reference_model, DataLoader(TensorDataset(x, y), batch_size=4),
                                torch.optim.SGD(reference_model.parameters(), lr=0.1, momentum=0.5),
                                nn.CrossEntropyLoss(), 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    losses, steps, loader = _run_train(train, model, _host_loader(x, y, 4), optimizer, n_epochs=2)
    if isinstance(losses, list) and any(isinstance(v, torch.Tensor) for v in losses):
        kept_graph = any(isinstance(v, torch.Tensor) and v.requires_grad for v in losses)
        raise AssertionError(
            "train returns tensors. The sheet's rule: the losses are Python floats (loss.item())"
            + (", and keeping the tensors also keeps every iteration's graph in memory" if kept_graph else ""))
    check_floats(losses, "the result of train", "train returns the loss of every iteration as a Python float")
    assert loader.passes > 0, (
        "train should go through the dataloader it is given (for images, labels in dataloader:), not through "
        "another loader")
    assert steps.by(optimizer) == len(reference) and not steps.others(optimizer), (
        "the sheet's rule: every iteration calls optimizer.step() once, on the optimizer train is given")
    assert len(losses) == len(reference), (
        "train should return one loss per iteration, for every epoch: create the list once, before the loop "
        "over epochs, and append inside the loop over batches")
    # The sheet's loop: zero_grad, forward, loss, backward, step. A missing or misplaced zero_grad
    # changes the parameters from the second step on.
    check_close(losses, reference, "the losses returned by train", rtol=1e-4, atol=1e-6,
                hint="Each iteration: optimizer.zero_grad() before loss.backward(), then optimizer.step(); "
                     "append loss.item() of that iteration.")
    for p, q in zip(model.parameters(), reference_model.parameters()):
        check_close(p.detach(), q.detach(), "the parameters after train", rtol=1e-4, atol=1e-6,
                    hint="train should update the model with optimizer.step() on every batch.")
    # Without n_epochs: one epoch (the default Task 2b relies on).
    x, y, model = _train_setup(seed=1)
    losses, _, _ = _run_train(train, model, _host_loader(x, y, 4), torch.optim.SGD(model.parameters(), lr=0.1))
    assert isinstance(losses, list) and len(losses) == math.ceil(len(x) / 4), (
        "the sheet's signature: train(model, dataloader, optimizer, loss_fn, n_epochs=1): without n_epochs "
        "it trains one epoch")


# ----------------------------------------------------------------------------- Task 2b


def _adam_settings(lr: float) -> dict:
    """Adam's settings with the sheet's learning rate, the others as they are (this torch's defaults)."""
    group = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr).param_groups[0]
    implementation = {"params", "foreach", "fused", "capturable", "differentiable"}
    return {key: value for key, value in group.items() if key not in implementation}


def _same_setting(value, wanted) -> bool:
    if isinstance(wanted, (tuple, list)):
        return isinstance(value, (tuple, list)) and len(value) == len(wanted) and all(
            math.isclose(float(a), float(b)) for a, b in zip(value, wanted))
    if isinstance(wanted, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isclose(value, wanted, rel_tol=1e-9, abs_tol=1e-12)
    return value == wanted


def _last_loss(model, optimizer, images, labels) -> float:
    """The loss of ``model`` before its last Adam step, on the last batch of the sheet's loader: the
    step undone from the optimizer's state (the update Adam made from its moments)."""
    before = copy.deepcopy(model)
    copies = dict(zip(map(id, model.parameters()), before.parameters()))
    with torch.no_grad():
        for group in optimizer.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state, q = optimizer.state[p], copies[id(p)]
                step = float(state["step"])
                denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2 ** step)).add_(group["eps"])
                q.addcdiv_(state["exp_avg"], denom, value=group["lr"] / (1 - beta1 ** step))
        start = (math.ceil(len(images) / SHEET["batch_size"]) - 1) * SHEET["batch_size"]
        return nn.functional.cross_entropy(before(images[start:]), labels[start:]).item()


@single_thread
def test_training_runs(models, optimizers, all_losses, SimpleMLP, train_set, device, namespace=None):
    """Task 2b: six SimpleMLP([784, 32, 10]) on ``device``, one Adam(lr=0.04) each, each model trained
    once, for one epoch, by its own optimizer, on the sheet's loader; all_losses[i] what train returned.

    Judged from what training leaves behind (the optimizers' state and the models' parameters), never
    by training again; on failure, ``models``, ``optimizers`` and ``all_losses`` become a reference run,
    so that the figures after this cell are drawn from runs that exist."""
    check_gradients_on("the code of Task 2b")
    with fallback(namespace, lambda: reference_runs(train_set, device)):
        for name, value in (("models", models), ("optimizers", optimizers), ("all_losses", all_losses)):
            assert isinstance(value, (list, tuple)) and len(value) == SHEET["n_models"], (
                f"the sheet's rule: {name} is a list of six entries, one per model")
        assert len({id(m) for m in models}) == len(models), "every entry of models should be a model of its own"
        assert not _shared(models), (
            "two of the models share a layer: the sheet's rule: create each model separately (SimpleMLP(...) six "
            "times), so each gets its own random initial parameters")
        images, labels, n_batches = _sheet_batches(train_set, device)
        for i, (model, optimizer, losses) in enumerate(zip(models, optimizers, all_losses)):
            _check_model(i, model, SimpleMLP, device)
            _check_optimizer(i, model, optimizer, n_batches)
            check_floats(losses, f"all_losses[{i}]", "all_losses holds, per model, the list of losses train returns")
            assert len(losses) == n_batches, (
                f"all_losses[{i}] should hold one loss per batch of one epoch on train_loader (n_epochs=1)")
            assert math.isclose(losses[-1], _last_loss(model, optimizer, images, labels), rel_tol=1e-3, abs_tol=1e-4), (
                f"all_losses[{i}] does not end with the loss of the last step of models[{i}] (the step its optimizer "
                f"made last). The sheet's rule: all_losses[{i}] is what train returns when it trains models[{i}] with "
                f"optimizers[{i}] on train_loader, whose batches come in their order (no shuffling)")
        first = [p.detach() for p in models[0].parameters()]
        assert not all(torch.equal(a, b.detach()) for a, b in zip(first, models[1].parameters())), (
            "models[0] and models[1] have identical parameters: create each model separately")


def _check_model(i, model, SimpleMLP, device):
    check_exact_class(model, SimpleMLP, f"models[{i}]", "the models are SimpleMLP([784, 32, 10])")
    assert _shapes(model) == [(32, 784), (32,), (10, 32), (10,)], f"models[{i}] should be SimpleMLP([784, 32, 10])"
    assert all(p.device.type == torch.device(device).type for p in model.parameters()), (
        f"models[{i}] is not on `device`: the sheet's rule: each model on device (.to(device))")


def _check_optimizer(i, model, optimizer, n_batches):
    check_exact_class(optimizer, torch.optim.Adam, f"optimizers[{i}]", "one torch.optim.Adam per model")
    own = list(model.parameters())
    bound = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(bound) == len(own) and {id(p) for p in bound} == {id(p) for p in own}, (
        f"optimizers[{i}] should optimize the parameters of models[{i}], and only those")
    for group in optimizer.param_groups:
        for key, wanted in _adam_settings(SHEET["lr"]).items():
            assert _same_setting(group.get(key), wanted), (
                f"optimizers[{i}] has another {key} than the sheet's Adam: learning rate 0.04, every other setting "
                "as Adam has it")
    steps = {int(optimizer.state[p]["step"]) if "step" in optimizer.state.get(p, {}) else 0 for p in own}
    assert steps != {0}, (
        f"optimizers[{i}] never made a step: the sheet's rule: optimizers[{i}] trains models[{i}] "
        f"(train(models[{i}], train_loader, optimizers[{i}], loss_fn, n_epochs=1))")
    assert steps == {n_batches}, (
        f"optimizers[{i}] made another number of steps than one per batch of one epoch on train_loader: the "
        "sheet's rule: train each model once, for one epoch, on train_loader")


def _smoothed(losses, window):
    values = np.asarray([float(v) for v in losses], dtype=float)
    return np.convolve(values, np.ones(window) / window, mode="valid")


def _told_apart(series_styles, entries, figure, what):
    """Every model's series has a style of its own that a legend entry names, each with a label of its own."""
    labels = []
    for i, styles in enumerate(series_styles):
        texts = {e.text for e in entries if e.style in styles and e.text.strip()}
        assert texts, (
            f"the legend of {figure} has no entry in the colour and style of the {what}s of model {i + 1}: label "
            f"each model's {what}s (label=f\"Model {{i}}\") and show the legend (ax.legend() or fig.legend())")
        labels.append(texts)
    for i in range(len(series_styles)):
        for j in range(i + 1, len(series_styles)):
            assert not series_styles[i] & series_styles[j], (
                f"the {what}s of model {i + 1} and model {j + 1} look the same (colour, line style): the legend "
                "cannot tell them apart")
            assert not labels[i] & labels[j], (
                f"model {i + 1} and model {j + 1} have the same label in the legend of {figure}: label each model's "
                f"{what}s with a name of its own")


def test_loss_figure(fig, all_losses, student_id=""):
    """Task 2b's plot: every model's losses smoothed by a moving average over the student's own
    window (utils/variant.py; the grader's id wins over the typed one), each curve in a style of its
    own, named by a legend (of the panel or of the figure)."""
    window = variant("mnist", student_id).numbers.window
    check_gradients_on("the code of the plot of Task 2b")
    check_figure(fig, "fig_losses", n_axes=1)
    ax = main_axes(fig)[0]
    styles = []
    for i, losses in enumerate(all_losses):
        found = curves(ax, _smoothed(losses, window))
        if not found:
            _not_the_default_window(ax, losses, window)
            raise AssertionError(
                f"fig_losses does not show the losses of model {i + 1} smoothed as the sheet says: a moving average "
                "over your own window (window, from your student id), np.convolve(losses, np.ones(window) / window, "
                "mode='valid')")
        styles.append({style_of(artist) for artist in found})
    assert legend_entries(ax), "fig_losses needs a legend with one entry per model: label each curve, then ax.legend()"
    _told_apart(styles, legend_entries(ax), "fig_losses", "curve")


def _not_the_default_window(ax, losses, window):
    """A curve smoothed over the default window where the student's own differs: the one message
    that says so (the student kept the example's window)."""
    default = DEFAULTS["mnist"].window
    if window != default and curves(ax, _smoothed(losses, default)):
        raise AssertionError("the sheet says: smooth over your own window, window, which comes from your student "
                             "id; fig_losses smooths over the default window instead")


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


def _evaluation_rules(recorder, name):
    assert recorder.grad_enabled and not any(recorder.grad_enabled), (
        f"{name} runs the model with gradients on. The sheet's rule: evaluate without tracking gradients "
        "(with torch.no_grad(): or torch.inference_mode())")


def _call_eval(func, name, model, loader):
    try:
        result = func(model, loader)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - an error of the student's code becomes advice
        raise _device_rule(exc, name) from None
    check_gradients_on(name)
    return result


@single_thread
def test_compute_accuracy(compute_accuracy, namespace=None):
    """Task 3a: correct predictions over all samples, in eval mode, without gradients."""
    check_gradients_on("the code of Task 3a")
    with fallback(namespace, {"compute_accuracy": Reference.compute_accuracy}):
        _check_accuracy(compute_accuracy)


def _check_accuracy(compute_accuracy):
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
    _evaluation_rules(recorder, "compute_accuracy")
    for key, value in model.state_dict().items():
        assert torch.equal(value, model_snapshot[key]), "compute_accuracy must not change the model's parameters"


@single_thread
def test_compute_accuracy_per_class(compute_accuracy_per_class, namespace=None):
    """Task 3b: {class: accuracy} for 0..9, each over the samples of that class."""
    check_gradients_on("the code of Task 3b")
    with fallback(namespace, {"compute_accuracy_per_class": Reference.compute_accuracy_per_class}):
        _check_per_class(compute_accuracy_per_class)


def _check_per_class(compute_accuracy_per_class):
    x, labels, model, recorder = _eval_setup()
    # Batches of 7: the short last batch (4 samples) holds samples of several classes.
    result = _call_eval(compute_accuracy_per_class, "compute_accuracy_per_class", model, _host_loader(x, labels, 7))
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
    _evaluation_rules(recorder, "compute_accuracy_per_class")


# ----------------------------------------------------------------------------- Task 3c


def _series(drawn, accuracies) -> list:
    """The styles in which all ten bars of one model are drawn, at their digits, from the x-axis up."""
    by_style = {}
    for bar in drawn:
        by_style.setdefault(bar.style, []).append(bar)
    return [style for style, group in by_style.items()
            if all(_bar_of(group, digit, accuracies[digit]) for digit in range(10))]


def _bar_of(group, digit, height):
    return next((b for b in group if abs(b.x - digit) < 0.5 and abs(b.bottom) < 1e-9
                 and math.isclose(b.height, float(height), rel_tol=1e-6, abs_tol=1e-9)), None)


def _distinct(candidates: list[list], taken=()) -> list | None:
    """One candidate per entry, no two alike (or None)."""
    if not candidates:
        return []
    for choice in candidates[0]:
        if choice not in taken:
            rest = _distinct(candidates[1:], (*taken, choice))
            if rest is not None:
                return [choice, *rest]
    return None


def test_bar_chart(fig, per_class_accuracies):
    """The grouped bar chart: per digit a group of one bar per model, as high as its accuracy on the
    digit, side by side (shifted, not on top of each other), each model in a style of its own that the
    legend names."""
    check_gradients_on("the code of Task 3c")
    check_figure(fig, "fig_bars", n_axes=1)
    ax = main_axes(fig)[0]
    drawn = bars(ax)
    for i, accuracies in enumerate(per_class_accuracies):
        assert isinstance(accuracies, dict) and all(d in accuracies for d in range(10)), (
            f"per_class_accuracies[{i}] should be the dict of compute_accuracy_per_class, with the keys 0 to 9")
        for digit in range(10):
            assert any(abs(b.x - digit) < 0.5 and math.isclose(b.height, float(accuracies[digit]), rel_tol=1e-6,
                                                               abs_tol=1e-9) for b in drawn), (
                f"fig_bars lacks the bar of model {i + 1} for digit {digit}: draw one bar per digit and model, "
                "as high as that model's accuracy on that digit, in the group around x = digit")
    candidates = [_series(drawn, accuracies) for accuracies in per_class_accuracies]
    for i, styles in enumerate(candidates):
        assert styles, (
            f"the ten bars of model {i + 1} do not share one colour (or do not all stand on the x-axis): draw each "
            "model's bars in a colour of its own, one ax.bar call per model, so that the legend can tell the models "
            "apart")
    chosen = _distinct(candidates)
    assert chosen is not None, "two models' bars have the same colour: give each model a colour of its own"
    for digit in range(10):
        placed = sorted((_bar_of([b for b in drawn if b.style == style], digit, acc[digit]) for style, acc in
                         zip(chosen, per_class_accuracies)), key=lambda b: b.x)
        assert all(b.x - a.x >= 0.5 * min(a.width, b.width) for a, b in zip(placed, placed[1:])), (
            f"at digit {digit} the bars of the models sit on top of each other: the sheet's rule: shift each model's "
            "bars a little along the x-axis (ax.bar(digits + offset, heights, width, ...)), so all can be seen")
    entries = legend_entries(ax)
    assert entries, "fig_bars needs a legend with one entry per model"
    _told_apart([{style} for style in chosen], entries, "fig_bars", "bar")
