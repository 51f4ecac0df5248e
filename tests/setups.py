"""Small, fast setups on real digits (scikit-learn's load_digits), healthy and broken, for the test suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset


@dataclass
class Setup:
    model: nn.Module
    loader: Any
    loss_fn: Callable[..., Any]
    optimizer: torch.optim.Optimizer | None


PATIENT_BUDGET_S = 30.0  # tests that check what the search finds give it room: a loaded CI machine is slower


@cache
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(1797, 64) standardized features and (1797,) labels."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    return (x - x.mean(0)) / (x.std(0) + 1e-6), torch.tensor(y)


@cache
def digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """(1797, 1, 8, 8) images in [0, 1] and labels."""
    d = load_digits()
    return torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1), torch.tensor(d.target)


def loader(x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, shuffle: bool = True) -> DataLoader:
    return DataLoader(
        TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(0)
    )


def mlp(*tail: nn.Module, width: int = 64, classes: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, classes), *tail)


def adam(model: nn.Module, lr: float = 1e-3, **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, **kw)


def healthy() -> Setup:
    x, y = digits()
    model = mlp()
    return Setup(model, loader(x, y), nn.CrossEntropyLoss(), adam(model))


def healthy_cnn() -> Setup:
    x, y = digit_images()
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )
    return Setup(
        model,
        loader((x - 0.3) / 0.4, y),
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
    )


class SoftmaxOverBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.body(x), dim=0)  # the bug: normalizes over the batch


class Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.body(x).detach().numpy(), requires_grad=True)  # the graph is cut


class FirstItem(Dataset):
    """A dataset whose __getitem__ ignores the index."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[0], self.y[i]


def imbalanced(share: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary digits task (0 vs rest): the majority class holds `share` of the samples."""
    x, y = digits()
    target = (y == 0).long()
    minority = torch.nonzero(target == 1).flatten()
    majority = torch.nonzero(target == 0).flatten()
    keep = int(len(minority) * share / (1 - share))
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.cat([minority, majority[torch.randperm(len(majority), generator=generator)[:keep]]])
    return x[chosen], 1 - target[chosen]  # class 1 = "not zero" is the majority


def _sick(cause: str) -> Setup:
    x, y = digits()
    ce = nn.CrossEntropyLoss()
    if cause == "init.too_small":
        model = nn.Sequential(*[m for _ in range(5) for m in (nn.LazyLinear(64), nn.ReLU())], nn.Linear(64, 10))
        model(x[:2])
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1e-3)
                nn.init.zeros_(m.bias)
        return Setup(model, loader(x, y), ce, torch.optim.SGD(model.parameters(), lr=0.01))
    if cause == "init.too_large":
        model = nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10))
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=2.0)
        return Setup(model, loader(x, y), ce, torch.optim.SGD(model.parameters(), lr=0.01))
    if cause == "init.symmetric":
        model = mlp()
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.constant_(m.weight, 0.05)
        return Setup(model, loader(x, y), ce, adam(model))
    if cause == "init.dead_units":
        model = mlp()
        nn.init.constant_(model[0].bias, -20.0)
        return Setup(model, loader(x, y), ce, adam(model))
    if cause == "init.nonfinite":
        model = mlp()
        with torch.no_grad():
            model[2].weight[4, 7] = float("inf")
        return Setup(model, loader(x, y), ce, adam(model))
    if cause == "lr.too_high":
        model = mlp()
        return Setup(model, loader(x, y), ce, adam(model, lr=1.0))
    if cause == "lr.too_low":
        model = mlp()
        return Setup(model, loader(x, y), ce, torch.optim.SGD(model.parameters(), lr=1e-5))
    if cause == "data.unnormalized":
        raw, labels = digit_images()
        model = mlp()
        return Setup(
            model, loader((raw * 255).reshape(-1, 64), labels), ce, torch.optim.SGD(model.parameters(), lr=0.05)
        )
    if cause == "data.target_scale":
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
        target = (y.float() * 500 + 3000).unsqueeze(1)
        return Setup(model, loader(x, target), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=1e-3))
    if cause == "data.class_imbalance":
        xi, yi = imbalanced(0.97)
        model = mlp(classes=2)
        return Setup(model, loader(xi, yi), ce, torch.optim.SGD(model.parameters(), lr=0.01))
    if cause == "data.labels_unrelated":
        model = mlp()
        shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
        return Setup(model, loader(x, shuffled), ce, adam(model))
    if cause == "data.low_variability":
        model = mlp()
        return Setup(model, DataLoader(FirstItem(x, y), batch_size=64, shuffle=True), ce, adam(model))
    if cause == "data.unshuffled":
        order = y.argsort(stable=True)
        model = mlp()
        return Setup(model, loader(x[order], y[order], shuffle=False), ce, adam(model))
    if cause == "data.nonfinite":
        bad = x.clone()
        bad[::50, 3] = float("nan")
        model = mlp()
        return Setup(model, loader(bad, y), ce, adam(model))
    if cause == "loss.double_softmax":
        model = mlp(nn.Softmax(dim=1))
        return Setup(model, loader(x, y), ce, torch.optim.SGD(model.parameters(), lr=0.05))
    if cause == "loss.task_mismatch":
        model = mlp()
        return Setup(model, loader(x, y + 1), ce, adam(model))  # 1-based labels 1..10
    if cause == "loss.shape_broadcast":
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
        return Setup(model, loader(x, (y.float() - 4.5) / 3), nn.MSELoss(), adam(model))
    if cause == "arch.output_activation":
        model = mlp(nn.ReLU())
        return Setup(model, loader(x, y), ce, torch.optim.SGD(model.parameters(), lr=0.05))
    if cause == "arch.softmax_single_unit":
        model = mlp(nn.Softmax(dim=1), classes=1)
        return Setup(model, loader(x, (y < 5).float().unsqueeze(1)), nn.BCELoss(), adam(model))
    if cause == "arch.batch_mixing":
        model = SoftmaxOverBatch()
        return Setup(model, loader(x, y), nn.NLLLoss(), adam(model))
    if cause == "optim.not_updating":
        model = mlp()
        return Setup(model, loader(x, y), ce, adam(mlp()))  # the optimizer of another model
    if cause == "optim.over_regularized":
        model = mlp()
        return Setup(model, loader(x, y), ce, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5.0))
    if cause == "mode.bn_small_batch":
        model = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
        return Setup(model, loader(x, y, batch_size=2), ce, adam(model))
    raise KeyError(cause)


def _benign(cause: str) -> Setup:
    """A healthy setup that looks like the sick one in one respect."""
    x, y = digits()
    if cause in ("loss.double_softmax", "arch.batch_mixing"):
        model = mlp(nn.LogSoftmax(dim=1))
        return Setup(model, loader(x, y), nn.NLLLoss(), adam(model))
    if cause in ("arch.output_activation", "arch.softmax_single_unit"):
        model = mlp(nn.Sigmoid(), classes=1)
        return Setup(model, loader(x, (y < 5).float().unsqueeze(1)), nn.BCELoss(), adam(model))
    if cause == "optim.not_updating":
        model = mlp()
        for p in model[0].parameters():
            p.requires_grad_(False)  # a deliberately frozen first layer
        return Setup(model, loader(x, y), nn.CrossEntropyLoss(), adam(model))
    if cause == "data.class_imbalance":
        xi, yi = imbalanced(0.6)
        model = mlp(classes=2)
        return Setup(model, loader(xi, yi), nn.CrossEntropyLoss(), adam(model))
    if cause in ("mode.bn_small_batch", "init.dead_units", "init.symmetric"):
        return healthy_cnn()
    if cause in ("data.target_scale", "loss.shape_broadcast", "loss.task_mismatch"):
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
        return Setup(model, loader(x, ((y.float() - 4.5) / 3).unsqueeze(1)), nn.MSELoss(), adam(model))
    if cause == "data.unnormalized":
        raw, labels = digit_images()  # [0, 1] pixels without Normalize: fine
        model = mlp()
        return Setup(model, loader(raw.reshape(-1, 64), labels), nn.CrossEntropyLoss(), adam(model))
    if cause == "optim.over_regularized":
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10))
        return Setup(
            model,
            loader(x, y),
            nn.CrossEntropyLoss(),
            torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2),
        )
    if cause == "lr.too_low":
        model = mlp()
        return Setup(
            model, loader(x, y), nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        )
    return healthy()


def sick(cause: str) -> Setup:
    """A setup broken by exactly `cause`, deterministic."""
    torch.manual_seed(0)
    np.random.seed(0)
    return _sick(cause)


def benign(cause: str) -> Setup:
    """A healthy look-alike of the setup broken by `cause`, deterministic."""
    torch.manual_seed(0)
    np.random.seed(0)
    return _benign(cause)
