"""Training batches that leave the held-out samples out, recognized by value wherever a loader puts them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch

from torchmedic.batch import Batch


def row_keys(batch: Batch) -> list[bytes]:
    """A digest of each sample's input and target values, to recognize a sample in another batch."""
    x = batch.first_input.detach().cpu().contiguous()
    rows = x.reshape(x.shape[0], -1).numpy() if x.dim() > 0 else x.reshape(1, 1).numpy()
    y = batch.targets
    targets = y.detach().cpu().contiguous().reshape(y.shape[0], -1).numpy() if y is not None and y.dim() > 0 else None
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
