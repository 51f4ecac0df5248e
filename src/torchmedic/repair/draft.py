"""The setup being repaired: a copy of the user's model with the recipe around it, changed one remedy at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch
from torchmedic.clone import OptimizerSpec, clone_model
from torchmedic.repair.wrappers import ScaledOutputs, StandardizedInputs
from torchmedic.tracing import WithoutOp


@dataclass(frozen=True)
class Scale:
    """Fixed statistics a wrapper standardizes with: a tensor per channel for inputs, a number for targets."""

    mean: Any
    std: Any


@dataclass(frozen=True)
class Draft:
    """Everything the repaired setup consists of. `inner` is a copy with the user's architecture that remedies
    change in place (re-init, a layer swapped); the wrappers around it are assembled by `model()`."""

    inner: nn.Module
    spec: OptimizerSpec
    loss_fn: Callable[..., Any]
    loader: Iterable[Any]  # what the user trains with: their loader unless a data remedy built another
    train: tuple[Batch, ...]  # the pilot's training batches, drawn from `loader`
    skipped_ops: tuple[tuple[str, int], ...] = ()  # (op name, ordinal) removed from forward by WithoutOp
    inputs: Scale | None = None
    outputs: Scale | None = None
    history: tuple[str, ...] = ()  # what each remedy applied so far changed, in order

    def but(self, **changes: Any) -> Draft:
        return replace(self, **changes)

    def model(self, *, fresh: bool = False) -> nn.Module:
        """The repaired model: `inner` (a fresh copy of it when `fresh`) inside the wrappers the remedies chose."""
        model = clone_model(self.inner) if fresh else self.inner
        for name, ordinal in self.skipped_ops:
            model = WithoutOp(model, name, ordinal)
        if self.outputs is not None:
            model = ScaledOutputs(model, self.outputs.mean, self.outputs.std)
        if self.inputs is not None:
            model = StandardizedInputs(model, self.inputs.mean.clone(), self.inputs.std.clone())
        return model

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """A fresh optimizer of the recipe over `model` (one returned by `model()`)."""
        return self.spec.build(model)
