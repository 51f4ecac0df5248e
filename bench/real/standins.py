"""Offline stand-ins for the datasets of public threads: the same shapes and task, data that ships or is generated.

Every generator is deterministic (its own seeded RandomState) and returns a `bench.data.Split`.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import datasets
from torch.utils.data import DataLoader, TensorDataset

from bench.data import Split, _split, digits, tensor


@cache
def mnist_like(side: int = 28) -> Split:
    """scikit-learn's 8x8 digits upsampled to (N, 1, side, side) in [0, 1], like MNIST after ToTensor; 10 classes."""
    d = datasets.load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1)
    return _split(x.numpy(), d.target.astype(np.int64))


def _shape_masks(rng: np.random.RandomState, side: int, classes: int, radius: tuple[float, float]) -> np.ndarray:
    """One (side, side) mask of class ids: 1-3 shapes (disc for class 1, square for 2, ring for 3...) on class 0."""
    yy, xx = np.mgrid[0:side, 0:side]
    mask = np.zeros((side, side), dtype=np.int64)
    for _ in range(rng.randint(1, 4)):
        label = rng.randint(1, classes)
        r = rng.uniform(*radius) * side
        cy, cx = rng.uniform(r, side - r, size=2)
        if label % 3 == 1:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        elif label % 3 == 2:
            inside = (np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)
        else:
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            inside = (d2 <= r * r) & (d2 >= (0.5 * r) ** 2)
        mask[inside] = label
    return mask


@cache
def shapes(
    n: int = 480, side: int = 32, classes: int = 2, channels: int = 3, radius: tuple[float, float] = (0.12, 0.25)
) -> Split:
    """Segmentation: noisy images of discs, squares and rings with (N, side, side) masks of class ids (0 is the
    background). Each class has its own mean colour, so a small conv net segments them; `radius` (as a share of the
    side) sets how much of the image is foreground (about 10% at the default, under 1% at (0.03, 0.05))."""
    rng = np.random.RandomState(classes * 1000 + side)
    colours = rng.uniform(0.2, 1.0, size=(classes, channels)).astype(np.float32)
    colours[0] = 0.1
    masks = np.stack([_shape_masks(rng, side, classes, radius) for _ in range(n)])
    images = colours[masks].transpose(0, 3, 1, 2) + rng.normal(0, 0.15, size=(n, channels, side, side))
    return _split(images.astype(np.float32), masks, stratify=False)


@cache
def digit_rows() -> Split:
    """The 8x8 digits as sequences: (N, 8 time steps, 8 features) in 0..1, one row per step; 10 classes."""
    d = datasets.load_digits()
    return _split((d.images / 16.0).astype(np.float32), d.target.astype(np.int64))


@cache
def sine_waves(n: int = 1200, length: int = 50, classes: int = 3) -> Split:
    """Time-series classification: (N, length, 1) noisy sine waves; the label is the frequency band."""
    rng = np.random.RandomState(length)
    labels = rng.randint(0, classes, size=n)
    t = np.arange(length)
    freq = (labels[:, None] + 1) * 0.05 + rng.uniform(-0.01, 0.01, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    x = np.sin(2 * np.pi * freq * t + phase) + rng.normal(0, 0.3, size=(n, length))
    return _split(x[..., None].astype(np.float32), labels.astype(np.int64))


@cache
def token_reviews(n: int = 1600, length: int = 40, vocab: int = 200) -> Split:
    """Text classification: (N, length) token ids (0 is padding at the end); a review is positive (1) when it holds
    more of the 20 "good" tokens than of the 20 "bad" ones, as in sentiment threads."""
    rng = np.random.RandomState(vocab)
    x = rng.randint(41, vocab, size=(n, length))
    lengths = rng.randint(length // 2, length + 1, size=n)
    good = rng.randint(0, 6, size=n)
    bad = rng.randint(0, 6, size=n)
    bad[good == bad] += 1
    for i in range(n):
        slots = rng.choice(lengths[i], size=good[i] + bad[i], replace=False)
        x[i, slots[: good[i]]] = rng.randint(1, 21, size=good[i])
        x[i, slots[good[i] :]] = rng.randint(21, 41, size=bad[i])
        x[i, lengths[i] :] = 0
    return _split(x.astype(np.int64), (good > bad).astype(np.int64))


@cache
def series_windows(n: int = 1500, window: int = 30, scale: float = 1.0, offset: float = 0.0) -> Split:
    """Forecasting: (N, window, 1) windows of a noisy two-frequency signal and the next value as an (N, 1) target,
    in units `offset + scale * signal` (a temperature in the tens, a price in the thousands)."""
    rng = np.random.RandomState(window)
    t = np.arange(n + window + 1)
    signal = np.sin(2 * np.pi * t / 37) + 0.5 * np.sin(2 * np.pi * t / 11) + rng.normal(0, 0.1, size=t.shape)
    values = (offset + scale * signal).astype(np.float32)
    x = np.stack([values[i : i + window] for i in range(n)])[..., None]
    y = values[window : window + n, None]
    return _split(x, y, stratify=False)


@cache
def digit_attributes() -> Split:
    """Multi-label: the 64 raw digit pixels (0..16) with 4 float 0/1 labels per image: even, >= 5, prime, has a
    closed loop (0, 6, 8, 9)."""
    d = digits()

    def labels(y: np.ndarray) -> np.ndarray:
        return np.stack([y % 2 == 0, y >= 5, np.isin(y, [2, 3, 5, 7]), np.isin(y, [0, 6, 8, 9])], 1).astype(np.float32)

    return Split(d.x_train, labels(d.y_train), d.x_test, labels(d.y_test))


@cache
def tabular_regression(n: int = 1000, features: int = 8, targets: int = 1, scale: float = 1.0) -> Split:
    """Tabular regression with a learnable nonlinear signal: (N, features) standard-normal inputs and (N, targets)
    targets times `scale` (house prices in the hundreds of thousands at scale=1e5)."""
    rng = np.random.RandomState(features * 10 + targets)
    x = rng.normal(size=(n, features)).astype(np.float32)
    w = rng.normal(size=(features, targets))
    y = np.tanh(x @ w / np.sqrt(features)) * 2 + 0.3 * (x[:, :1] ** 2) + rng.normal(0, 0.1, size=(n, targets))
    return _split(x, (scale * (y + 3)).astype(np.float32), stratify=False)


def loaders(d: Split, batch_size: int, *, shuffle: bool = True) -> tuple[DataLoader, DataLoader]:
    """(training loader, held-out loader) over a split, seeded like bench.data.loader."""
    generator = torch.Generator().manual_seed(0) if shuffle else None
    train = DataLoader(
        TensorDataset(tensor(d.x_train), tensor(d.y_train)), batch_size=batch_size, shuffle=shuffle, generator=generator
    )
    held = DataLoader(TensorDataset(tensor(d.x_test), tensor(d.y_test)), batch_size=256)
    return train, held
