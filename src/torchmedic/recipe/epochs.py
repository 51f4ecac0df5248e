"""One epoch of training and one pass over the test set, as the recipe runs them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchmedic.monitor import Monitor


@dataclass
class Tally:
    """Summed loss and correct predictions over the samples seen so far."""

    loss: float = 0.0
    correct: int = 0
    count: int = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        size = len(targets)
        self.loss += float(loss) * size
        self.correct += int((logits.argmax(dim=1) == targets).sum())
        self.count += size

    @property
    def mean_loss(self) -> float:
        return self.loss / self.count if self.count else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")


def train_epoch(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
    monitor: Monitor | None = None,
    on_batch: Callable[[Tally], None] | None = None,
) -> Tally:
    """zero_grad, forward, loss, backward, step, then the per-batch schedule step; the monitor sees every batch."""
    model.train()
    tally = Tally()
    for images, targets in loader:
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)  # (B, classes)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if monitor is not None:
            monitor.log(loss=loss, outputs=logits, targets=targets)
        tally.add(loss.detach(), logits.detach(), targets)
        if on_batch is not None:
            on_batch(tally)
    return tally


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Any], loss_fn: nn.Module, device: torch.device) -> Tally:
    """Loss and accuracy on held-out data, in eval mode (BatchNorm uses its running statistics)."""
    model.eval()
    tally = Tally()
    for images, targets in loader:
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        logits = model(images)
        tally.add(loss_fn(logits, targets), logits, targets)
    model.train()
    return tally
