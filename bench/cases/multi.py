"""Two faults at once, as real setups often have: each alone would be enough to stall training."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import breast_cancer, diabetes, digits, standardize, wine
from bench.models import mlp


@case("data.unnormalized", "lr.too_high", steps=300)
def multi_raw_wine_lr_high() -> Setup:
    """Raw wine features (proline ~750) and SGD with lr=10: unscaled inputs, and steps that diverge even once scaled."""
    d = wine()
    model = mlp([13, 64, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=10.0)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case("loss.double_softmax", "lr.too_low", steps=300)
def multi_double_softmax_lr_low() -> Setup:
    """nn.Softmax at the end of the model before CrossEntropyLoss, and SGD with lr=1e-4."""
    d = standardize(digits())
    model = nn.Sequential(mlp([64, 128, 10]), nn.Softmax(dim=1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("data.target_scale", "loss.shape_broadcast", steps=300)
def multi_raw_targets_broadcast() -> Setup:
    """Diabetes on raw targets (25..346) and a [N, 1] output against [N] targets, Adam lr=1e-3."""
    d = standardize(diabetes())
    model = mlp([10, 32, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


@case("init.too_small", "lr.too_low", steps=300)
def multi_small_init_lr_low() -> Setup:
    """A 6-layer MLP initialized with normal(std=1e-3) and trained with Adam at lr=1e-5."""
    d = standardize(digits())
    model = mlp([64] + [256] * 5 + [10])
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1e-3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("data.nonfinite", "data.unnormalized", steps=200, split="holdout")
def multi_nan_raw_features() -> Setup:
    """Raw breast-cancer features (areas in the thousands) read from a CSV with empty cells left as NaN."""
    d = breast_cancer()
    rng = np.random.default_rng(0)
    d = d.map_x(lambda x: np.where(rng.random(x.shape) < 0.01, np.nan, x).astype(np.float32))
    model = mlp([30, 32, 2])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary", batch_size=32)
