"""The shipped datasets are exactly what their generating scripts describe."""

import importlib.util

import torch
from conftest import ROOT


def load_script(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_autodiff_data_matches_its_generator():
    make = load_script(ROOT / "source" / "autodiff" / "make_data.py")
    X, y = make.generate()
    for folder in ("source", "release"):
        assert torch.equal(torch.load(ROOT / folder / "autodiff" / "X.pt"), X)
        assert torch.equal(torch.load(ROOT / folder / "autodiff" / "y.pt"), y)


def test_autodiff_data_follows_the_stated_law():
    make = load_script(ROOT / "source" / "autodiff" / "make_data.py")
    X, y = make.generate()
    assert X.shape == (make.N_SAMPLES, 3) and y.shape == (make.N_SAMPLES, 1)
    design = torch.cat([X, torch.ones(len(X), 1)], dim=1).double()
    coef = torch.linalg.lstsq(design, y.double()).solution.ravel()
    assert torch.allclose(coef, torch.tensor([*make.WEIGHTS, make.BIAS], dtype=torch.float64), atol=0.05)
    residual = y.double().ravel() - design @ coef
    assert abs(residual.std().item() - make.NOISE_STD) < 0.05


def test_autodiff_run_2_3_separates_best_last_and_neighbouring_epochs():
    """With the sheet's settings for 2.3, "the best-validation model" and "the last model" differ,
    and taking a neighbouring epoch moves the test MSE far beyond test_last_and_best's tolerance
    (check_close: rtol 1e-4), so 2.4 can tell these answers apart."""
    import numpy as np
    from sklearn.model_selection import train_test_split
    from torch.utils.data import DataLoader, TensorDataset

    from hidden_tests.autodiff import RUN_2_3
    from utils import seed_everything

    X, y = torch.load(ROOT / "source" / "autodiff" / "X.pt"), torch.load(ROOT / "source" / "autodiff" / "y.pt")
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.2, random_state=42)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=42)
    loader = DataLoader(TensorDataset(X_train, y_train), batch_size=RUN_2_3["batch_size"], shuffle=True,
                        generator=seed_everything(0))
    w = torch.zeros(3, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    val, test = [], []
    for _ in range(RUN_2_3["epochs"]):
        for xb, yb in loader:
            loss = ((xb @ w + b - yb) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                w -= RUN_2_3["lr"] * w.grad
                b -= RUN_2_3["lr"] * b.grad
            w.grad.zero_()
            b.grad.zero_()
        with torch.no_grad():
            val.append(((X_val @ w + b - y_val) ** 2).mean().item())
            test.append(((X_test @ w + b - y_test) ** 2).mean().item())
    best, last = int(np.argmin(val)), len(val) - 1
    assert 0 < best < last - 1
    ordered = sorted(val)
    assert ordered[1] - ordered[0] > 1e-4 * ordered[0]  # float rounding cannot move the best epoch
    for i, j in ((best, best - 1), (best, best + 1), (last, last - 1), (best, last)):
        assert abs(test[i] - test[j]) > 10 * 1e-4 * test[i], (i, j)
