"""Data bugs: unnormalized inputs, targets on the wrong scale, imbalance, unrelated labels, constant or NaN inputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset, WeightedRandomSampler

from bench.cases.registry import Setup, case, on_split
from bench.data import (
    Split,
    breast_cancer,
    column_as_target,
    diabetes,
    digits32,
    eval_loader,
    loader,
    normalize_images,
    photos,
    standardize,
    tensor,
    wine,
)
from bench.models import ConvNet, mlp


@case("data.unnormalized", steps=200)
def data_raw_pixels() -> Setup:
    """Raw 0-255 pixels fed to a CNN (tensors built from uint8 arrays, no ToTensor/Normalize), SGD with momentum."""
    d = digits32().map_x(lambda x: np.round(x * 255))
    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("data.unnormalized", steps=300)
def data_raw_wine() -> Setup:
    """Raw wine features (proline ~750, magnesium ~100, hue ~1) into an MLP with SGD: one feature swamps the rest."""
    d = wine()
    model = mlp([13, 64, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case("data.unnormalized", steps=200, split="holdout")
def data_divided_twice() -> Setup:
    """Photo patches divided by 255 in the Dataset and again in the transform: inputs squashed to at most 0.004."""
    d = photos().map_x(lambda x: x.astype(np.float32) / 255).map_x(lambda x: x / 255)
    model = ConvNet(n_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary")


@case("data.target_scale", steps=300)
def data_raw_targets_sgd() -> Setup:
    """Diabetes regression on raw targets (25..346) with SGD lr=0.01: squared errors ~2e4 make the steps explode."""
    d = standardize(diabetes()).map_y(lambda y: y[:, None])
    model = mlp([10, 32, 1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


@case("data.target_scale", steps=300, split="holdout")
def data_raw_targets_adam() -> Setup:
    """Predict wine proline (278..1680) from the other features, Adam lr=1e-3: the output never reaches that scale."""
    d = standardize(column_as_target(wine(), 12))
    model = mlp([12, 32, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=16)


def _flag_top(d: Split, fraction: float) -> Split:
    """Diabetes as a binary task: flag the `fraction` of patients with the fastest progression (train quantile)."""
    threshold = np.quantile(d.y_train, 1 - fraction)
    return d.map_y(lambda y: (y > threshold).astype(np.int64))


@case("data.class_imbalance", steps=300)
def data_imbalance_95_5() -> Setup:
    """Flag the 5% fastest diabetes progressions (95/5 binary) with plain CrossEntropyLoss: it predicts "no" always."""
    d = _flag_top(standardize(diabetes()), 0.05)
    model = mlp([10, 32, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary", batch_size=32)


@case("data.class_imbalance", steps=300, split="holdout")
def data_imbalance_inverted_sampler() -> Setup:
    """An 80/20 task "balanced" by a WeightedRandomSampler fed class counts, not inverse counts: ~94/6 batches."""
    d = _flag_top(standardize(diabetes()), 0.2)
    labels = tensor(d.y_train)
    counts = torch.bincount(labels).float()
    sampler = WeightedRandomSampler(counts[labels], num_samples=len(labels), generator=torch.Generator().manual_seed(0))
    train = DataLoader(TensorDataset(tensor(d.x_train), labels), batch_size=32, sampler=sampler)
    model = mlp([10, 32, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, eval_loader(d.x_test, d.y_test), "binary")


def _drop_unlabelled(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Meant to drop rows labelled -1 (not yet reviewed); `y > 0` also drops every label 0."""
    keep = y > 0
    return x[keep], y[keep]


@case("data.class_imbalance", steps=200)
def data_single_class() -> Setup:
    """A filter meant to drop unlabelled rows (-1) written `y > 0`: only class 1 is left, so it predicts 1 always.

    The held-out rows go through the same filter, so the failure shows as every prediction on one class.
    """
    d = standardize(breast_cancer())
    rng = np.random.default_rng(0)
    y_train = np.where(rng.random(len(d.y_train)) < 0.1, -1, d.y_train)  # 10% of rows not yet reviewed
    x_train, y_train = _drop_unlabelled(d.x_train, y_train)
    x_test, y_test = _drop_unlabelled(d.x_test, d.y_test)
    model = mlp([30, 32, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(
        model, loader(x_train, y_train, 32), nn.CrossEntropyLoss(), optimizer, eval_loader(x_test, y_test), "binary"
    )


def _shuffle_separately(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle images and labels "to mix the data" with two different permutations: the pairs are destroyed."""
    return x[rng.permutation(len(x))], y[rng.permutation(len(y))]


@case("data.labels_unrelated", steps=200)
def data_labels_shuffled() -> Setup:
    """Images and labels shuffled with separate permutations before the DataLoader: labels carry no signal."""
    d = normalize_images(digits32())
    rng = np.random.default_rng(0)
    x_train, y_train = _shuffle_separately(d.x_train, d.y_train, rng)
    x_test, y_test = _shuffle_separately(d.x_test, d.y_test, rng)
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(
        model,
        loader(x_train, y_train, 64),
        nn.CrossEntropyLoss(),
        optimizer,
        eval_loader(x_test, y_test),
        "classification",
    )


@case("data.labels_unrelated", steps=300, split="holdout")
def data_labels_shifted() -> Setup:
    """Labels joined to features off by one row (a header line read as data): each row gets its neighbour's label."""
    d = standardize(breast_cancer())
    model = mlp([30, 32, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(
        model,
        loader(d.x_train[:-1], d.y_train[1:], 32),
        nn.CrossEntropyLoss(),
        optimizer,
        eval_loader(d.x_test[:-1], d.y_test[1:]),
        "binary",
    )


class FirstItemDataset(Dataset):
    """A custom Dataset whose __getitem__ indexes with 0 instead of idx: every image is the first one."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[0], self.labels[idx]


@case("data.low_variability", steps=200)
def data_same_item() -> Setup:
    """A Dataset whose __getitem__ returns images[0] for every index: all inputs are the same photo patch."""
    d = normalize_images(photos().map_x(lambda x: x.astype(np.float32) / 255))
    model = ConvNet(n_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = FirstItemDataset(tensor(d.x_train), tensor(d.y_train))
    evaluation = FirstItemDataset(tensor(d.x_test), tensor(d.y_test))
    return Setup(
        model,
        DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        nn.CrossEntropyLoss(),
        optimizer,
        DataLoader(evaluation, batch_size=256),
        "binary",
    )


@case("data.low_variability", steps=200)
def data_zeroed_by_dtype() -> Setup:
    """Images already in [0, 1] divided by 255 and cast to uint8 "to save memory": every pixel becomes 0."""
    d = digits32().map_x(lambda x: (x / 255).astype(np.uint8).astype(np.float32))
    d = d.map_x(lambda x: (x - 0.5) / 0.5)  # the usual Normalize((0.5,), (0.5,))
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


def _sort_by_label(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order an image-folder dataset lists files in: class by class."""
    order = np.argsort(y, kind="stable")
    return x[order], y[order]


@case("data.unshuffled", steps=110)  # 5 epochs of 22 batches
def data_unshuffled_images() -> Setup:
    """A loader with shuffle=False over digits stored class by class: every batch holds one class, the last wins."""
    d = normalize_images(digits32())
    x_train, y_train = _sort_by_label(d.x_train, d.y_train)
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(
        model,
        loader(x_train, y_train, 64, shuffle=False),
        nn.CrossEntropyLoss(),
        optimizer,
        eval_loader(d.x_test, d.y_test),
        "classification",
    )


@case("data.unshuffled", steps=258, split="holdout")  # 6 epochs of 43 batches
def data_unshuffled_rmsprop() -> Setup:
    """Images in image-folder order (class by class), shuffle=False, RMSprop and batch 32: it ends on the last class."""
    d = normalize_images(digits32())
    x_train, y_train = _sort_by_label(d.x_train, d.y_train)
    model = ConvNet()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    return Setup(
        model,
        loader(x_train, y_train, 32, shuffle=False),
        nn.CrossEntropyLoss(),
        optimizer,
        eval_loader(d.x_test, d.y_test),
        "classification",
    )


def _with_missing(x: np.ndarray, rng: np.random.Generator, fraction: float = 0.01) -> np.ndarray:
    """Features read from a CSV with empty cells: 1% of the entries are NaN."""
    return np.where(rng.random(x.shape) < fraction, np.nan, x).astype(np.float32)


@case("data.nonfinite", steps=200)
def data_nan_features() -> Setup:
    """Breast-cancer features with 1% missing cells left as NaN: the first batch with a NaN makes the loss NaN."""
    d = standardize(breast_cancer())
    rng = np.random.default_rng(0)
    d = d.map_x(lambda x: _with_missing(x, rng))
    model = mlp([30, 32, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary", batch_size=32)


@case("data.nonfinite", steps=200)
def data_log_zero_target() -> Setup:
    """Diabetes targets log-transformed as log(y - y.min()) instead of log1p: the smallest target becomes -inf."""
    d = standardize(diabetes())
    low = d.y_train.min()
    with np.errstate(divide="ignore", invalid="ignore"):  # numpy's warning about log(0), which the user missed
        d = d.map_y(lambda y: np.log(y - low)[:, None].astype(np.float32))
    model = mlp([10, 32, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)
