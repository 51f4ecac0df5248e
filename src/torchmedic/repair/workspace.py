"""What every remedy of one repair() call reads: the diagnosis's context and signals, the pilot batches, the clock."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from torchmedic.batch import Batch, BatchKeys
from torchmedic.context import Context, read_batches
from torchmedic.remedies.lr_finder import LRFinderResult
from torchmedic.repair.config import RepairConfig
from torchmedic.repair.pilot import pilot_batches
from torchmedic.signals import Signals


@dataclass
class Workspace:
    """`ctx` holds the copies, the batches read and the task (built as diagnose() builds its own); its signals are
    the diagnosis's. `pool` is what pilots train on: the batches read, minus the held-out samples."""

    ctx: Context
    config: RepairConfig
    keys: BatchKeys
    deadline: float
    pool: tuple[Batch, ...]
    notes: list[str] = field(default_factory=list)
    range_tests: dict[tuple[str, ...], LRFinderResult] = field(default_factory=dict)  # by Draft.history

    @property
    def signals(self) -> Signals:
        return self.ctx.signals

    @property
    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def generator(self) -> torch.Generator:
        """A generator seeded the same way for every attempt, so attempts differ only in what they change."""
        return torch.Generator().manual_seed(self.config.seed)

    def batches_from(self, loader: Iterable[Any]) -> tuple[Batch, ...]:
        """Pilot batches read from a loader a data remedy built, within the limits diagnose read the user's with (its
        share of what is left of the budget)."""
        ctx = self.ctx
        until = time.perf_counter() + ctx.config.audit_share * max(self.remaining, 1.0)
        read = read_batches(loader, self.keys, ctx.config, until)
        return pilot_batches(read, ctx.held_out, ctx.config.max_trial_batch, self.config.pilot_steps, ctx.device)
