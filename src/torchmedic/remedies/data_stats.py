"""Per-channel statistics of a dataset, read in one streaming pass: what Normalize needs, and what is wrong."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from torchmedic.batch import Batch, unpack
from torchmedic.errors import InputError
from torchmedic.guard import preserved
from torchmedic.stats import per_feature

SAMPLE_CHUNK = 256  # samples of a map-style dataset stacked into one batch before they are counted


@dataclass(frozen=True)
class DatasetStats:
    """Per-channel mean/std/min/max of the inputs, the class histogram and how many samples repeat."""

    count: int  # samples read
    sample_shape: tuple[int, ...]  # of the first sample
    dtype: str
    mean: tuple[float, ...]  # per channel: dim 0 of a sample, dim 1 of a batch (one value for scalar samples)
    std: tuple[float, ...]  # population std (ddof=0), over finite values
    min: tuple[float, ...]
    max: tuple[float, ...]
    nonfinite: int  # NaN or infinite input values (left out of the moments)
    class_counts: tuple[int, ...] | None  # samples per class index, for integer targets; None otherwise
    duplicates: int  # samples whose input bytes equal an earlier sample's
    truncated: bool  # reading stopped at max_samples

    @property
    def duplicate_fraction(self) -> float:
        return self.duplicates / self.count if self.count else 0.0

    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def pixel_scale(self) -> float:
        """255 when the values look like raw 8-bit pixels (max above 1), else 1: what to divide mean and std by."""
        return 255.0 if max(self.max) > 1.0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duplicate_fraction": self.duplicate_fraction, "channels": self.channels}


def dataset_stats(data: Any, *, max_samples: int | None = None) -> DatasetStats:
    """Streaming per-channel statistics (float64, Chan's parallel update) of a map-style Dataset or any loader.

    A torch Dataset yields samples, such as (image, label) or a PIL image; anything else (a DataLoader, a list of
    batches, a tensor) yields batches with the batch along dim 0. Random transforms and shuffling draw from
    generators that are put back afterwards.
    """
    if max_samples is not None and max_samples < 1:
        raise InputError(f"max_samples={max_samples}: read at least one sample (None reads everything).")
    moments = _Moments()
    with preserved(loader=data):
        for batch in _batches(data):
            if max_samples is not None and moments.count + batch.size > max_samples:
                batch = batch.select(slice(0, max_samples - moments.count))
            moments.add(batch)
            if max_samples is not None and moments.count >= max_samples:
                break
    if moments.count == 0:
        raise InputError(f"dataset_stats read no samples from the {type(data).__name__}: is it empty?")
    return moments.result(truncated=max_samples is not None and moments.count >= max_samples)


class _Moments:
    """Running count/mean/M2 per channel (merged batch by batch), extremes, class counts and sample hashes."""

    def __init__(self) -> None:
        self.count = 0
        self.values: torch.Tensor | None = None  # finite values seen per channel
        self.mean = self.m2 = self.low = self.high = torch.zeros(0, dtype=torch.float64)
        self.nonfinite = 0
        self.classes: torch.Tensor | None = torch.zeros(0, dtype=torch.int64)
        self.hashes: set[bytes] = set()
        self.duplicates = 0
        self.shape: tuple[int, ...] = ()
        self.dtype = ""

    def add(self, batch: Batch) -> None:
        x = batch.first_input.detach().cpu()
        if x.dim() == 0:
            x = x.reshape(1)
        if self.count == 0:
            self.shape, self.dtype = tuple(x.shape[1:]), str(x.dtype).replace("torch.", "")
        features = per_feature(x.double() if x.dim() > 1 else x.double().reshape(-1, 1))  # (C, N * ...)
        if self.values is not None and features.shape[0] != self.mean.shape[0]:
            raise InputError(
                f"sample {self.count} has {features.shape[0]} channels where earlier ones had {self.mean.shape[0]} "
                f"(input shape {tuple(x.shape)})."
            )
        self._merge(features)
        self._count_classes(batch.targets, x.shape[0])
        self._hash(x)
        self.count += x.shape[0]

    def _merge(self, features: torch.Tensor) -> None:
        finite = torch.isfinite(features)
        self.nonfinite += int((~finite).sum())
        n_b = finite.sum(dim=1).double()
        clean = torch.where(finite, features, torch.zeros((), dtype=torch.float64))
        mean_b = clean.sum(dim=1) / n_b.clamp(min=1)
        m2_b = (torch.where(finite, features - mean_b[:, None], torch.zeros((), dtype=torch.float64)) ** 2).sum(1)
        low = torch.where(finite, features, torch.full((), torch.inf, dtype=torch.float64)).amin(dim=1)
        high = torch.where(finite, features, torch.full((), -torch.inf, dtype=torch.float64)).amax(dim=1)
        if self.values is None:
            self.values, self.mean, self.m2, self.low, self.high = n_b, mean_b, m2_b, low, high
            return
        n_a, total = self.values, self.values + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / total.clamp(min=1)
        self.m2 = self.m2 + m2_b + delta**2 * n_a * n_b / total.clamp(min=1)
        self.values, self.low, self.high = total, torch.minimum(self.low, low), torch.maximum(self.high, high)

    def _count_classes(self, targets: torch.Tensor | None, size: int) -> None:
        if self.classes is None:
            return
        if targets is None or targets.is_floating_point() or targets.is_complex() or targets.numel() != size:
            self.classes = None
            return
        labels = targets.detach().cpu().long().flatten()
        if labels.numel() and int(labels.min()) < 0:
            self.classes = None
            return
        counts = torch.bincount(labels, minlength=len(self.classes))
        counts[: len(self.classes)] += self.classes
        self.classes = counts

    def _hash(self, x: torch.Tensor) -> None:
        rows = x.contiguous().reshape(x.shape[0], -1).numpy()
        for row in rows:
            digest = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
            if digest in self.hashes:
                self.duplicates += 1
            else:
                self.hashes.add(digest)

    def result(self, truncated: bool) -> DatasetStats:
        assert self.values is not None
        std = (self.m2 / self.values.clamp(min=1)).sqrt()
        classes = None if self.classes is None or not len(self.classes) else tuple(int(c) for c in self.classes)
        return DatasetStats(self.count, self.shape, self.dtype, _floats(self.mean), _floats(std), _floats(self.low),
                            _floats(self.high), self.nonfinite, classes, self.duplicates, truncated)  # fmt: skip


def _floats(values: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _batches(data: Any) -> Iterator[Batch]:
    if isinstance(data, (torch.Tensor, np.ndarray)):
        yield unpack(_as_tensors(data))
    elif isinstance(data, Dataset):
        yield from _stacked(_samples(data))
    elif isinstance(data, Iterable):
        for index, raw in enumerate(data):
            yield unpack(_as_tensors(raw), index=index)
    else:
        raise InputError(f"dataset_stats takes a Dataset, a DataLoader or an iterable of batches, not a "
                         f"{type(data).__name__}.")  # fmt: skip


def _samples(dataset: Dataset) -> Iterator[Batch]:
    items: Iterable[Any]
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        items = iter(dataset)
    else:
        items = (dataset[i] for i in range(len(dataset)))
    for index, item in enumerate(items):
        yield unpack(_as_tensors(item), index=index)


def _stacked(samples: Iterator[Batch]) -> Iterator[Batch]:
    # Consecutive samples of one shape become one batch; a new shape starts a new batch.
    while True:
        chunk = list(itertools.islice(samples, SAMPLE_CHUNK))
        if not chunk:
            return
        for _, group in itertools.groupby(chunk, key=_shapes):
            same = list(group)
            targets = [b.targets for b in same]
            stacked = None if targets[0] is None else torch.stack([t for t in targets if t is not None])
            yield Batch(torch.stack([b.first_input for b in same]), stacked)


def _shapes(sample: Batch) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    return tuple(sample.first_input.shape), None if sample.targets is None else tuple(sample.targets.shape)


def _as_tensors(item: Any) -> Any:
    """PIL images become (C, H, W) tensors, the layout torch datasets use after ToTensor; numpy arrays tensors."""
    if type(item).__module__.startswith("PIL."):
        array = torch.from_numpy(np.array(item))
        return array.permute(2, 0, 1) if array.dim() == 3 else array.unsqueeze(0)
    if isinstance(item, np.ndarray):
        return torch.from_numpy(item)
    if isinstance(item, (tuple, list)):
        return type(item)(_as_tensors(v) for v in item)
    return item
