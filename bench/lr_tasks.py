"""Small classification tasks for the LR bench, built only from data that ships with scikit-learn (no downloads)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import datasets
from sklearn.model_selection import train_test_split
from torch import nn

OptimizerFactory = Callable[[Iterator[nn.Parameter], float], torch.optim.Optimizer]


@dataclass(frozen=True)
class Split:
    """Train and held-out tensors of one task."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class LRTask:
    """A model, data, optimizer and a short training budget on which an LR suggestion is judged."""

    name: str
    data: Callable[[], Split]
    model: Callable[[], nn.Module]
    optimizer: OptimizerFactory
    optimizer_name: str
    batch_size: int
    epochs: int
    held_out: bool = False  # run only at the end, to check the suggestion rule was not tuned to the other tasks


def _standardized(x: np.ndarray, y: np.ndarray, test_size: float = 0.3) -> Split:
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=0, stratify=y)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-8
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    return Split(as_x(x_tr), torch.tensor(y_tr), as_x(x_te), torch.tensor(y_te))


def digits_flat() -> Split:
    x, y = datasets.load_digits(return_X_y=True)
    return _standardized(x, y)


def digits_32() -> Split:
    """Digits upsampled to 32x32 and repeated over 3 channels, standardized per channel: a CIFAR-shaped input."""
    x, y = datasets.load_digits(return_X_y=True)
    img = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16
    img = F.interpolate(img, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)  # (N, 3, 32, 32)
    x_tr, x_te, y_tr, y_te = train_test_split(img.numpy(), y, test_size=0.3, random_state=0, stratify=y)
    mean, std = x_tr.mean(axis=(0, 2, 3), keepdims=True), x_tr.std(axis=(0, 2, 3), keepdims=True)
    return Split(torch.tensor((x_tr - mean) / std), torch.tensor(y_tr), torch.tensor((x_te - mean) / std),
                 torch.tensor(y_te))  # fmt: skip


def wine() -> Split:
    return _standardized(*datasets.load_wine(return_X_y=True))


def breast_cancer() -> Split:
    return _standardized(*datasets.load_breast_cancer(return_X_y=True))


def iris() -> Split:
    return _standardized(*datasets.load_iris(return_X_y=True))


def image_patches() -> Split:
    """16x16 patches of the two sample photos (china, flower), labelled by photo and by top/bottom half: 4 classes."""
    images = datasets.load_sample_images().images
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for k, image in enumerate(images):
        h, w, _ = image.shape
        for half in (0, 1):
            rows = rng.integers(half * h // 2, (half + 1) * h // 2 - 16, size=300)
            cols = rng.integers(0, w - 16, size=300)
            xs += [image[r : r + 16, c : c + 16].transpose(2, 0, 1) for r, c in zip(rows, cols, strict=True)]
            ys += [2 * k + half] * 300
    x = np.stack(xs).astype(np.float32) / 255  # (N, 3, 16, 16)
    x_tr, x_te, y_tr, y_te = train_test_split(x, np.array(ys), test_size=0.3, random_state=0, stratify=ys)
    mean, std = x_tr.mean(axis=(0, 2, 3), keepdims=True), x_tr.std(axis=(0, 2, 3), keepdims=True)
    return Split(torch.tensor((x_tr - mean) / std), torch.tensor(y_tr), torch.tensor((x_te - mean) / std),
                 torch.tensor(y_te))  # fmt: skip


def mlp(sizes: tuple[int, ...], act: type[nn.Module] = nn.ReLU) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(act())
        return nn.Sequential(*layers)

    return build


def small_cnn(size: int, classes: int, width: int = 8) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * (size // 4) ** 2, classes),
        )  # fmt: skip

    return build


def sgd(momentum: float = 0.0) -> OptimizerFactory:
    return lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=momentum)


def adam(params: Iterator[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


def adamw(params: Iterator[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)


TASKS = (
    LRTask("digits-mlp", digits_flat, mlp((64, 64, 10)), sgd(0.9), "SGD(momentum=0.9)", 32, 2),
    LRTask("digits32-cnn", digits_32, small_cnn(32, 10), adam, "Adam", 64, 2),
    LRTask("wine-mlp", wine, mlp((13, 32, 3)), adamw, "AdamW(wd=1e-2)", 16, 3),
    LRTask("cancer-mlp", breast_cancer, mlp((30, 16, 2)), sgd(), "SGD", 32, 3),
    LRTask("iris-tanh-mlp", iris, mlp((4, 16, 16, 3), nn.Tanh), sgd(), "SGD", 16, 10, held_out=True),
    LRTask("patches-cnn", image_patches, small_cnn(16, 4), sgd(0.9), "SGD(momentum=0.9)", 32, 3, held_out=True),
)
