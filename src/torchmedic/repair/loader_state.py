"""Reading the user's loader advances the generators it shuffles with: put them back, as preserved() does for the
global ones, so the user's next epoch draws the order it would have drawn."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


def _generators(loader: Iterable[Any]) -> list[torch.Generator]:
    """The loader's own generator and its sampler's (often the same object), once each."""
    sampler = getattr(loader, "sampler", None)
    found: dict[int, torch.Generator] = {}
    for owner in (loader, sampler, getattr(sampler, "sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())


@contextmanager
def loader_generators_kept(loader: Iterable[Any]) -> Iterator[None]:
    """Run the body, then restore the state of every generator the loader and its sampler draw from, also when the
    body raises."""
    saved = [(g, g.get_state()) for g in _generators(loader)]
    try:
        yield
    finally:
        for generator, state in saved:
            generator.set_state(state)
