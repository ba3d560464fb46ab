"""Generate X.pt and y.pt, the regression data of the autodiff assignment.

The generating law (students recover it by training a linear model):

    x ~ N(0, I_3)                                 1000 samples, 3 features
    y = 2.0 x_1 - 3.4 x_2 + 1.7 x_3 + 4.2 + e     e ~ N(0, 0.5^2)

X has shape (1000, 3) and y shape (1000, 1), both float32, drawn from
torch.Generator seeded with SEED. Run from anywhere:
    python source/autodiff/make_data.py
tests/test_assignment_data.py checks that the shipped files follow this law.
"""

from pathlib import Path

import torch

SEED = 2024
N_SAMPLES = 1000
WEIGHTS = (2.0, -3.4, 1.7)
BIAS = 4.2
NOISE_STD = 0.5


def generate() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    X = torch.randn(N_SAMPLES, len(WEIGHTS), generator=generator)
    noise = NOISE_STD * torch.randn(N_SAMPLES, 1, generator=generator)
    # Elementwise float32 operations in a fixed order, not a matrix product: a matmul's
    # summation order depends on the CPU's vector units, and y must be the same bits everywhere.
    y = BIAS + noise
    for i, weight in enumerate(WEIGHTS):
        y = y + weight * X[:, i:i + 1]
    return X, y


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    X, y = generate()
    torch.save(X, here / "X.pt")
    torch.save(y, here / "y.pt")
    print(f"wrote {here / 'X.pt'} {tuple(X.shape)} and {here / 'y.pt'} {tuple(y.shape)}")
