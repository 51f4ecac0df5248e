"""Offline datasets for the bench (scikit-learn's bundled data), each split once into train and held-out parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import datasets
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

SPLIT_SEED = 0  # one fixed train/held-out split per dataset, shared by every case
HELD_OUT = 0.25  # fraction of each dataset kept for evaluation only
PATCH = 32  # side of the square patches cut from the sample photos: CIFAR size


@dataclass(frozen=True)
class Split:
    """One dataset as read-only numpy arrays: the train part and the held-out part."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def map_x(self, fn: Callable[[np.ndarray], np.ndarray]) -> Split:
        """The same split with `fn` applied to the inputs of both parts (a preprocessing step)."""
        return replace(self, x_train=fn(self.x_train), x_test=fn(self.x_test))

    def map_y(self, fn: Callable[[np.ndarray], np.ndarray]) -> Split:
        """The same split with `fn` applied to the targets of both parts."""
        return replace(self, y_train=fn(self.y_train), y_test=fn(self.y_test))


def _split(x: np.ndarray, y: np.ndarray, *, stratify: bool = True) -> Split:
    parts = train_test_split(x, y, test_size=HELD_OUT, random_state=SPLIT_SEED, stratify=y if stratify else None)
    for array in parts:
        array.setflags(write=False)  # cached and shared between cases: a case must copy before it changes data
    return Split(*parts[0::2], *parts[1::2])


@cache
def digits() -> Split:
    """8x8 handwritten digits, flattened to 64 raw features in 0..16; 10 classes."""
    d = datasets.load_digits()
    return _split(d.data.astype(np.float32), d.target.astype(np.int64))


@cache
def digits32() -> Split:
    """The digits upsampled to 32x32 and repeated to 3 channels, scaled to [0, 1] like ToTensor: CIFAR-size images."""
    d = datasets.load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1).repeat(1, 3, 1, 1)
    return _split(x.numpy(), d.target.astype(np.int64))


@cache
def wine() -> Split:
    """Wine chemistry, 13 raw features (proline ~750, magnesium ~100, hue ~1); 3 cultivars."""
    d = datasets.load_wine()
    return _split(d.data.astype(np.float32), d.target.astype(np.int64))


@cache
def breast_cancer() -> Split:
    """Breast cancer, 30 raw features (areas in the thousands); binary, 63% benign."""
    d = datasets.load_breast_cancer()
    return _split(d.data.astype(np.float32), d.target.astype(np.int64))


@cache
def iris() -> Split:
    """Iris flowers, 4 features in centimetres; 3 species."""
    d = datasets.load_iris()
    return _split(d.data.astype(np.float32), d.target.astype(np.int64))


@cache
def diabetes() -> Split:
    """Diabetes progression: 10 features already scaled by scikit-learn, raw targets 25..346."""
    d = datasets.load_diabetes()
    return _split(d.data.astype(np.float32), d.target.astype(np.float32), stratify=False)


@cache
def photos() -> Split:
    """32x32 uint8 patches (N, 3, 32, 32) of scikit-learn's two sample photos, labelled by photo (china 0, flower 1)."""
    xs, ys = [], []
    for p, image in enumerate(datasets.load_sample_images().images):
        rows, cols = image.shape[0] // PATCH, image.shape[1] // PATCH
        for r in range(rows):
            for c in range(cols):
                xs.append(image[r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH].transpose(2, 0, 1))
                ys.append(p)
    return _split(np.stack(xs), np.array(ys, dtype=np.int64))


def column_as_target(split: Split, column: int) -> Split:
    """A regression task made from a tabular dataset: predict feature `column` (as [N, 1]) from the other features."""

    def rest(x: np.ndarray) -> np.ndarray:
        return np.delete(x, column, axis=1)

    return Split(rest(split.x_train), split.x_train[:, [column]], rest(split.x_test), split.x_test[:, [column]])


def standardize(split: Split) -> Split:
    """Tabular features standardized with the train part's per-feature mean and std (the usual StandardScaler)."""
    mean, std = split.x_train.mean(0), split.x_train.std(0) + 1e-8
    return split.map_x(lambda x: ((x - mean) / std).astype(np.float32))


def normalize_images(split: Split) -> Split:
    """Images normalized per channel with the train part's mean and std (the usual transforms.Normalize)."""
    mean = split.x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = split.x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    return split.map_x(lambda x: ((x - mean) / std).astype(np.float32))


def tensor(array: np.ndarray) -> torch.Tensor:
    """A writable torch copy of a (possibly read-only, cached) numpy array."""
    return torch.tensor(np.array(array))


def loader(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = True) -> DataLoader:
    """A DataLoader over (x, y) whose shuffling order is seeded, so every run sees the same batches."""
    generator = torch.Generator().manual_seed(0) if shuffle else None
    return DataLoader(TensorDataset(tensor(x), tensor(y)), batch_size=batch_size, shuffle=shuffle, generator=generator)


def eval_loader(x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> DataLoader:
    """The held-out part in fixed order, as the user would evaluate it."""
    return loader(x, y, batch_size, shuffle=False)
