"""Loss bugs: softmax applied twice, a loss that does not fit the targets, shapes that broadcast to [N, N]."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import (
    column_as_target,
    diabetes,
    digits,
    digits32,
    normalize_images,
    standardize,
    wine,
)
from bench.models import ConvNet, mlp


@case("loss.double_softmax", steps=150)
def loss_softmax_module() -> Setup:
    """nn.Softmax(dim=1) as the last module of a Sequential, then CrossEntropyLoss (softmax again), plain SGD."""
    d = standardize(digits())
    model = nn.Sequential(mlp([64, 128, 128, 10]), nn.Softmax(dim=1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


class SoftmaxCNN(ConvNet):
    """A CNN whose forward returns F.softmax of the logits ("so the outputs are probabilities")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(super().forward(x), dim=1)


@case("loss.double_softmax", steps=100)
def loss_softmax_forward() -> Setup:
    """F.softmax at the end of a CNN's forward, then nn.CrossEntropyLoss, SGD lr=0.003 with momentum."""
    d = normalize_images(digits32())
    model = SoftmaxCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("loss.double_softmax", steps=300, split="holdout")
def loss_softmax_lambda() -> Setup:
    """Softmax in forward and a lambda calling F.cross_entropy, with the tutorial's SGD(lr=0.001, momentum=0.9)."""
    d = normalize_images(digits32())
    model = SoftmaxCNN(widths=(6, 16, 32))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    return on_split(d, model, lambda out, y: F.cross_entropy(out, y), optimizer, "classification", batch_size=32)


@case("loss.task_mismatch", steps=200)
def loss_mse_on_class_indices() -> Setup:
    """MSELoss against class indices stored as a float [N, 1] column: each of the 10 outputs regresses the index."""
    d = normalize_images(digits32()).map_y(lambda y: y.astype(np.float32)[:, None])
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "classification")


@case("loss.task_mismatch", steps=200)
def loss_one_based_labels() -> Setup:
    """Wine cultivars labelled 1..3 as in the original CSV, a 3-unit head: label 3 is out of range for the loss."""
    d = standardize(wine()).map_y(lambda y: y + 1)
    model = mlp([13, 32, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case("loss.task_mismatch", steps=200)
def loss_bce_on_class_indices() -> Setup:
    """BCEWithLogitsLoss on 10-class digit indices (a multi-label loss for a multi-class task)."""
    d = standardize(digits())
    model = mlp([64, 128, 10])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.BCEWithLogitsLoss(), optimizer, "classification")


@case("loss.task_mismatch", steps=200, split="holdout")
def loss_head_too_small() -> Setup:
    """A 2-unit head left over from a binary model, trained on the 10 digit classes."""
    d = normalize_images(digits32())
    model = ConvNet(n_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("loss.shape_broadcast", steps=200)
def loss_broadcast_mse() -> Setup:
    """MSELoss on a [N, 1] output and a [N] target: the loss broadcasts to [N, N] and the optimum is the mean."""
    d = standardize(diabetes())
    mean, std = d.y_train.mean(), d.y_train.std()
    d = d.map_y(lambda y: (y - mean) / std)
    model = mlp([10, 32, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


class SqueezedMLP(nn.Module):
    """A regression MLP whose forward squeezes the output to [N] while the loader yields [N, 1] targets."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.body = mlp([n_features, 32, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


@case("loss.shape_broadcast", steps=300)
def loss_broadcast_l1() -> Setup:
    """L1Loss on a squeezed [N] output and [N, 1] targets (wine proline, standardized): broadcast to [N, N]."""
    d = standardize(column_as_target(wine(), 12))
    mean, std = d.y_train.mean(), d.y_train.std()
    d = d.map_y(lambda y: (y - mean) / std)
    model = SqueezedMLP(12)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    return on_split(d, model, nn.L1Loss(), optimizer, "regression", batch_size=16)
