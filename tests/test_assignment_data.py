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
