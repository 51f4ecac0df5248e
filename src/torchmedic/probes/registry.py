"""The probe registry: each probe runs one controlled measurement on copies and emits signals, deciding nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torchmedic.context import Context

ProbeFn = Callable[[Context], None]
Condition = Callable[[Context], bool]


def always(ctx: Context) -> bool:
    return True


@dataclass(frozen=True)
class Probe:
    name: str
    fn: ProbeFn
    order: int  # probes run in ascending order; later ones may read earlier signals
    when: Condition  # whether the measurement is worth its cost, given what earlier probes measured
    steps: int  # optimizer steps it trains for (0 for forward-only probes): what the budget is spent on
    forwards: float  # what a forward-only probe costs, in forwards of one training batch through a copy
    held_out_forwards: float  # and in forwards of the whole held-out sample


PROBES: list[Probe] = []


def probe(
    name: str,
    *,
    order: int,
    when: Condition = always,
    steps: int = 0,
    forwards: float = 0.0,
    held_out_forwards: float = 0.0,
) -> Callable[[ProbeFn], ProbeFn]:
    """Register `fn` as the probe `name`, with what it costs (optimizer steps, or forwards) for the budget."""

    def register(fn: ProbeFn) -> ProbeFn:
        if any(p.name == name for p in PROBES):
            raise ValueError(f"probe {name!r} is already registered")
        PROBES.append(Probe(name, fn, order, when, steps, forwards, held_out_forwards))
        PROBES.sort(key=lambda p: p.order)
        return fn

    return register
