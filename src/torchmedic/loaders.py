"""New DataLoaders for the data remedies: the user's loader rebuilt with one setting changed, everything else kept."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, RandomSampler, Sampler, SequentialSampler


def why_not_rebuildable(loader: Iterable[Any]) -> str | None:
    """Why this loader cannot be rebuilt with other batches or order, or None when it can."""
    if not isinstance(loader, DataLoader):
        return f"the loader is a {type(loader).__name__}, not a torch DataLoader: repair cannot rebuild it"
    if isinstance(loader.dataset, IterableDataset):
        return "the loader reads an IterableDataset, whose order and batches the dataset itself decides"
    if loader.batch_size is None:
        return f"the loader batches with a custom batch_sampler ({type(loader.batch_sampler).__name__})"
    return None


def sampler_kind(loader: DataLoader) -> str:
    """ "sequential", "random" or the class name of a custom sampler."""
    if isinstance(loader.sampler, SequentialSampler):
        return "sequential"
    if isinstance(loader.sampler, RandomSampler) and not loader.sampler.replacement:
        return "random"
    return type(loader.sampler).__name__


def _copied(generator: torch.Generator | None) -> torch.Generator | None:
    """A generator in the same state, so the new loader never advances the user's."""
    if generator is None:
        return None
    copy = torch.Generator(device=generator.device)
    copy.set_state(generator.get_state())
    return copy


def _own(sampler: Any) -> Any:
    """A shallow copy of a custom sampler with its own generator: drawing from it leaves the user's as it was."""
    mine = copy.copy(sampler)
    if isinstance(getattr(mine, "generator", None), torch.Generator):
        mine.generator = _copied(mine.generator)
    return mine


def rebuilt(
    loader: DataLoader,
    *,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    sampler: Sampler[Any] | None = None,
) -> DataLoader:
    """The same DataLoader (dataset, workers, collate_fn, drop_last, ...) with another batch size, order or sampler.

    Without `shuffle` or `sampler`, the order is the user's: shuffled if their sampler shuffles, a custom sampler
    kept as it is (they iterate independently).
    """
    kind = sampler_kind(loader)
    if sampler is None and shuffle is None:
        if kind in ("sequential", "random"):
            shuffle = kind == "random"
        else:
            sampler = _own(loader.sampler)
    workers = loader.num_workers
    return DataLoader(
        loader.dataset,
        batch_size=batch_size or loader.batch_size,
        shuffle=None if sampler is not None else shuffle,
        sampler=sampler,
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context if workers else None,
        generator=_copied(loader.generator),
        prefetch_factor=loader.prefetch_factor if workers else None,
        persistent_workers=loader.persistent_workers if workers else False,
    )
