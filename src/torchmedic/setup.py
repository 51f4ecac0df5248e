"""One training setup as torchmedic experiments with it: a copy of the user's model with fixes around it, the
optimizer recipe, the loss, and the batches it trains and is judged on.

diagnose() verifies a candidate fix by training a setup with the fix applied; repair() applies the fixes that won
to a setup and hands its model, optimizer, loss and loader back. Both build setups the same way (see `fixes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch
from torchmedic.clone import OptimizerSpec, clone_model
from torchmedic.tracing import WithoutOp
from torchmedic.wrappers import ScaledOutputs, StandardizedInputs


@dataclass(frozen=True)
class Scale:
    """Fixed statistics a wrapper standardizes with: a tensor per channel for inputs, a number for targets."""

    mean: Any
    std: Any


@dataclass(frozen=True)
class Setup:
    """Everything one experiment trains. `inner` is a copy with the user's architecture that fixes change in place
    (re-init, a layer swapped); the wrappers around it are assembled by `model()`. `history` says what each fix
    applied so far changed, in order; `by_hand` names the changes the trial sees but the returned objects cannot
    carry (batches reordered from samples already read, when the user's loader cannot be rebuilt)."""

    inner: nn.Module
    spec: OptimizerSpec
    loss_fn: Callable[..., Any]
    loader: Iterable[Any]  # what the user trains with: their loader unless a fix built another
    train: tuple[Batch, ...]  # the batches a trial cycles through, drawn from `loader`
    held_out: Batch  # samples never trained on, to judge the setup
    skipped_ops: tuple[tuple[str, int], ...] = ()  # (op name, ordinal) removed from forward by WithoutOp
    inputs: Scale | None = None
    outputs: Scale | None = None
    history: tuple[str, ...] = ()
    by_hand: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return " + ".join(self.history) or "as given"

    def but(self, **changes: Any) -> Setup:
        return replace(self, **changes)

    def copied(self) -> Setup:
        """The same setup over a fresh copy of `inner`, for a fix to change in place."""
        return replace(self, inner=clone_model(self.inner))

    def model(self, *, fresh: bool = False) -> nn.Module:
        """The model to train: `inner` (a fresh copy of it when `fresh`) inside the wrappers the fixes chose."""
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
