"""Training batches that leave the held-out samples out, recognized by value wherever a loader puts them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from torchmedic.batch import Batch, concat, unpack

MIN_HELD_OUT = 32  # fewer held-out samples than this cannot tell learning from noise


def byte_rows(t: torch.Tensor) -> np.ndarray:
    """The bytes of each sample (row) of `t` as a (N, bytes) uint8 array, for any dtype: numpy has no bfloat16."""
    t = t.detach().cpu().contiguous()
    rows = t.reshape(t.shape[0], -1) if t.dim() > 0 else t.reshape(1, 1)
    return rows.view(torch.uint8).numpy()


def row_keys(batch: Batch) -> list[bytes]:
    """A digest of each sample's input and target values, to recognize a sample in another batch."""
    rows = byte_rows(batch.first_input)
    y = batch.targets
    targets = byte_rows(y) if y is not None and y.dim() > 0 else None
    keys = []
    for i, row in enumerate(rows):
        digest = hashlib.blake2b(row.tobytes(), digest_size=16)
        if targets is not None and i < len(targets):
            digest.update(targets[i].tobytes())
        keys.append(digest.digest())
    return keys


def without_held_out(
    batches: Iterable[Batch], held_out: Batch, limit: int, count: int, device: torch.device
) -> tuple[Batch, ...]:
    """Up to `count` batches (a pilot takes one per step) without the held-out samples (matched by value), cut to
    `limit` samples, on the device; a batch left with a single sample is dropped (BatchNorm cannot train on one),
    unless it held only one to begin with."""
    held = set(row_keys(held_out.to("cpu")))
    kept: list[Batch] = []
    for batch in batches:
        if len(kept) == count:
            break
        mask = torch.tensor([key not in held for key in row_keys(batch)], dtype=torch.bool)
        if int(mask.sum()) < min(2, batch.size):
            continue
        chosen = batch if bool(mask.all()) else batch.select(mask)
        if chosen.size > limit:
            chosen = chosen.select(slice(0, limit))
        kept.append(chosen.to(device))
    return tuple(kept)


def from_dataset(loader: Any, keys: Any, count: int, avoid: list[Batch], seed: int) -> Batch | None:
    """`count` samples drawn at random from the dataset behind a map-style DataLoader, collated as the loader does,
    without any sample that `avoid` holds: a held-out set that represents the data whatever order the loader reads
    it in (a loader sorted by class would leave only the last classes for later batches). None when the loader
    gives no such access or too few samples remain."""
    dataset = getattr(loader, "dataset", None)
    collate = getattr(loader, "collate_fn", None)
    if not isinstance(loader, DataLoader) or isinstance(dataset, IterableDataset) or collate is None:
        return None
    assert dataset is not None
    try:
        size = len(dataset)
    except TypeError:
        return None
    taken = set()
    for batch in avoid:
        taken.update(row_keys(batch.to("cpu")))
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    chosen: list[Batch] = []
    picked = 0
    for start in range(0, len(order), count):
        if picked >= count:
            break
        try:
            batch = unpack(collate([dataset[i] for i in order[start : start + count]]), keys)
        except Exception:
            return None
        mask = torch.tensor([key not in taken for key in row_keys(batch)], dtype=torch.bool)
        if bool(mask.any()):
            kept = batch.select(mask)
            chosen.append(kept)
            picked += kept.size
    if picked < min(count, MIN_HELD_OUT):
        return None
    try:
        joined = concat(chosen)
    except (RuntimeError, TypeError):
        return None
    return joined.select(slice(0, count))
