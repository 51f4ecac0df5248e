"""The user's own training loop, exactly as the buggy user wrote it: zero_grad, forward, loss, backward, step."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from bench.cases.registry import Setup

INPUT_KEY, TARGET_KEY = "image", "label"  # the keys of the bench's dict batches


@dataclass(frozen=True)
class TrainResult:
    """How normal training went: steps taken, first and last loss, and the error it raised (empty if none)."""

    steps: int
    first_loss: float
    last_loss: float
    error: str = ""

    @property
    def finite(self) -> bool:
        return math.isfinite(self.first_loss) and math.isfinite(self.last_loss)


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of one loader item: an (x, y) pair or a dict batch."""
    if isinstance(batch, Mapping):
        return batch[INPUT_KEY], batch[TARGET_KEY]
    x, y = batch
    return x, y


def train(setup: Setup, steps: int) -> TrainResult:
    """Run the user's loop for `steps` optimizer steps, epoch after epoch; stop at a non-finite loss or an error."""
    model, optimizer, loss_fn = setup.model, setup.optimizer, setup.loss_fn
    if optimizer is None:
        return TrainResult(0, math.nan, math.nan, "the setup has no optimizer")
    losses: list[float] = []
    model.train()
    try:
        while len(losses) < steps:
            epoch_start = len(losses)
            for batch in setup.loader:
                x, y = split_batch(batch)
                optimizer.zero_grad()
                out = model(x)
                loss = loss_fn(out, y)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                if not math.isfinite(losses[-1]):
                    return TrainResult(len(losses), losses[0], losses[-1])
                if len(losses) == steps:
                    break
            if len(losses) == epoch_start:
                raise ValueError("the loader yielded no batches")
    except Exception as exc:  # a loss that raises is a failure of the setup, reported with its message
        first, last = (losses[0], losses[-1]) if losses else (math.nan, math.nan)
        return TrainResult(len(losses), first, last, f"{type(exc).__name__}: {exc}")
    return TrainResult(len(losses), losses[0], losses[-1])
