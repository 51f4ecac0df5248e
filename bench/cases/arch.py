"""Architecture bugs: an activation that bounds the output, softmax over one unit, samples mixed across the batch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import (
    breast_cancer,
    column_as_target,
    diabetes,
    digits,
    digits32,
    eval_loader,
    iris,
    loader,
    normalize_images,
    photos,
    standardize,
)
from bench.models import ConvNet, RowRNN, mlp


@case("arch.output_activation", steps=300)
def arch_relu_output() -> Setup:
    """ReLU after the last Linear of a regression Sequential; the targets, log(y / y.max()), are all <= 0."""
    d = standardize(diabetes())
    top = d.y_train.max()
    d = d.map_y(lambda y: np.log(y / top)[:, None].astype(np.float32))
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1), nn.ReLU())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


class TanhRegressor(nn.Module):
    """A regression MLP that squashes its output with torch.tanh "to keep it stable"."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp([10, 64, 64, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x))


@case("arch.output_activation", steps=300)
def arch_tanh_output() -> Setup:
    """torch.tanh on a regression output whose targets (diabetes / 100, 0.25..3.46) lie mostly above its range."""
    d = standardize(diabetes()).map_y(lambda y: (y / 100)[:, None])
    model = TanhRegressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


class ClampedRegressor(nn.Module):
    """A regression MLP that clamps its output to [0, 1], written for targets scaled to [0, 1] by another script."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp([3, 32, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).clamp(0.0, 1.0)


@case("arch.output_activation", steps=300, split="holdout")
def arch_clamp_output() -> Setup:
    """Output clamped to [0, 1] while the targets are iris petal lengths in cm (1.0..6.9): it sticks at 1."""
    d = standardize(column_as_target(iris(), 2))
    model = ClampedRegressor()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=16)


@case("arch.softmax_single_unit", steps=200)
def arch_softmax_one_unit() -> Setup:
    """A binary classifier ending in Linear(32, 1) + Softmax(dim=1), trained with BCELoss: the output is always 1."""
    d = standardize(breast_cancer()).map_y(lambda y: y.astype(np.float32)[:, None])
    model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1), nn.Softmax(dim=1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.BCELoss(), optimizer, "binary", batch_size=32)


class OneUnitSoftmaxCNN(ConvNet):
    """A CNN with one output unit passed through F.softmax(dim=-1) "to get a probability"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(super().forward(x), dim=-1)


@case("arch.softmax_single_unit", steps=150)
def arch_softmax_one_unit_cnn() -> Setup:
    """Photo patches, a CNN with a 1-unit head and F.softmax(dim=-1), BCELoss, SGD with momentum."""
    d = normalize_images(photos().map_x(lambda x: x.astype(np.float32) / 255))
    d = d.map_y(lambda y: y.astype(np.float32)[:, None])
    model = OneUnitSoftmaxCNN(n_classes=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.BCELoss(), optimizer, "binary")


class ViewRNN(RowRNN):
    """RowRNN with x.view(T, N, F) where a transpose was meant: each sequence is stitched from several images."""

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[1], x.shape[0], x.shape[2])  # (N, T, F) -> (T, N, F) without moving data


@case("arch.batch_mixing", steps=300)
def arch_rnn_view() -> Setup:
    """A GRU over digit rows fed x.view(T, N, F) instead of x.transpose(0, 1): images mixed across the batch."""
    d = standardize(digits()).map_x(lambda x: x.reshape(-1, 8, 8))
    model = ViewRNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("arch.batch_mixing", steps=300, split="holdout")
def arch_log_softmax_batch_dim() -> Setup:
    """LogSoftmax(dim=0) (over the batch) before NLLLoss; it trains on batches but predicts one sample at a time.

    The failure shows when predicting single samples (eval batch size 1, as an app does): every output is 0.
    """
    d = standardize(digits())
    model = nn.Sequential(mlp([64, 128, 10]), nn.LogSoftmax(dim=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(
        model,
        loader(d.x_train, d.y_train, 64),
        nn.NLLLoss(),
        optimizer,
        eval_loader(d.x_test, d.y_test, batch_size=1),
        "classification",
    )


class BatchCenteredCNN(ConvNet):
    """A CNN that centers its input by the batch mean in forward ("cheap normalization")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x - x.mean(dim=0, keepdim=True))


@case("arch.batch_mixing", steps=150)
def arch_batch_centering() -> Setup:
    """Input centered by the batch mean inside forward; trained on batches of 64, used one image at a time.

    The failure shows when predicting single images (eval batch size 1): the centered input is all zeros.
    """
    d = normalize_images(digits32())
    model = BatchCenteredCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(
        model,
        loader(d.x_train, d.y_train, 64),
        nn.CrossEntropyLoss(),
        optimizer,
        eval_loader(d.x_test, d.y_test, batch_size=1),
        "classification",
    )


class FixedViewCNN(ConvNet):
    """Flattens with x.view(-1, K) where K was computed for a deeper stack than the one built: the rows that reach
    the head hold pieces of several samples."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)  # (B, 32, 8, 8) for widths (16, 32)
        return self.fc(features.view(-1, self.fc.in_features))


@case("arch.batch_mixing", steps=100)
def arch_view_fixed_size() -> Setup:
    """x.view(-1, 32 * 4 * 4) after two conv blocks whose output is 32 x 8 x 8: four rows per sample, the loss
    sees 4x the batch and raises."""
    d = normalize_images(digits32())
    model = FixedViewCNN(widths=(16, 32))
    model.fc = nn.Linear(32 * 4 * 4, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")
