"""Class weights and a sampler that give every class the same say (the cure for `data.class_imbalance`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from torchmedic.errors import InputError
from torchmedic.guard import preserved

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Balance:
    """Per-class counts, loss weights (inverse frequency, mean 1 over samples) and a class-balanced sampler."""

    counts: tuple[int, ...]
    class_weights: torch.Tensor  # (C,) float32: pass as CrossEntropyLoss(weight=...); 0 for absent classes
    sample_weights: torch.Tensor  # (N,) float64: the weight of each sample's class
    sampler: WeightedRandomSampler  # draws N samples with replacement, each class equally often on average


def balance(dataset_or_targets: Any, *, num_classes: int | None = None, seed: int | None = None) -> Balance:
    """Class weights for the loss and a WeightedRandomSampler that draws every class equally often.

    Takes the targets (tensor, array, list of class indices), a Dataset (its `targets` attribute, or the label of
    each item), or a DataLoader (its dataset). `seed` makes the sampler's draws reproducible.
    """
    labels = _labels(dataset_or_targets)
    classes = max(int(labels.max()) + 1, num_classes or 0)
    counts = torch.bincount(labels, minlength=classes)
    present = counts > 0
    weights = torch.zeros(classes, dtype=torch.float64)
    weights[present] = len(labels) / (int(present.sum()) * counts[present].double())  # mean over samples is 1
    if int(present.sum()) == 1:
        log.warning("balance: only class %d is present; weighting cannot help (see data.class_imbalance)",
                    int(present.nonzero()[0]))  # fmt: skip
    sample_weights = weights[labels]
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    sampler = WeightedRandomSampler(sample_weights, len(labels), replacement=True, generator=generator)  # type: ignore[arg-type]
    return Balance(tuple(int(c) for c in counts), weights.float(), sample_weights, sampler)


def _labels(data: Any) -> torch.Tensor:
    if isinstance(data, DataLoader):
        data = data.dataset
    if isinstance(data, Dataset):
        data = _dataset_labels(data)
    try:
        labels = torch.as_tensor(np.asarray(data) if isinstance(data, (list, tuple)) else data)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"balance could not read class indices from a {type(data).__name__}: {exc}") from exc
    if labels.numel() == 0:
        raise InputError("balance got no targets: the dataset is empty.")
    if labels.is_floating_point() or labels.is_complex() or labels.dim() != 1:
        raise InputError(
            f"balance needs one integer class index per sample; got dtype {labels.dtype} and shape "
            f"{tuple(labels.shape)}. Pass the class indices (e.g. labels.argmax(1) for one-hot targets)."
        )
    if int(labels.min()) < 0:
        raise InputError(f"class indices must be >= 0; the smallest is {int(labels.min())}.")
    return labels.long().cpu()


def _dataset_labels(dataset: Dataset) -> Any:
    for attribute in ("targets", "labels"):
        if hasattr(dataset, attribute):
            return getattr(dataset, attribute)
    if not hasattr(dataset, "__len__"):
        raise InputError("balance needs a sized Dataset (or the targets themselves) to weight every sample.")
    with preserved():  # reading items may run random transforms: leave the generators as they were
        try:
            return [int(dataset[i][1]) for i in range(len(dataset))]
        except (TypeError, IndexError, KeyError, ValueError) as exc:
            raise InputError(
                f"balance reads the label as item[1] of each dataset item, which failed ({type(exc).__name__}: {exc}); "
                "pass the targets themselves instead."
            ) from exc
