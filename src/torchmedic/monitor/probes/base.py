"""The template every monitor probe follows: measure on the session's events, never decide, never raise."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch.utils.hooks import RemovableHandle

from torchmedic.monitor.context import Context
from torchmedic.monitor.record import StepRecord

F = TypeVar("F", bound=Callable[..., Any])


class Handles:
    """Every hook handle a probe holds, so that what it attaches it can detach."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def add(self, handle: RemovableHandle) -> None:
        self._handles.append(handle)

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __len__(self) -> int:
        return len(self._handles)


class Probe:
    """One measurement of the training monitor. The session calls the events a probe overrides:

    `attach`/`detach` once (permanent hooks, kept to a minimum), `arm`/`disarm` around each sampled step (temporary
    hooks), `before_step`/`after_step` around the optimizer update of a sampled step, and `finish` when the step's
    record closes (statistics of the logged loss, outputs and targets)."""

    name = "probe"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.permanent = Handles()
        self.temporary = Handles()

    def attach(self) -> None:
        """Register permanent hooks."""

    def arm(self, record: StepRecord) -> None:
        """Register temporary hooks for the sampled step of `record`."""

    def before_step(self, record: StepRecord) -> None:
        """Gradients are ready, the update has not happened."""

    def after_step(self, record: StepRecord) -> None:
        """The update has happened."""

    def finish(self, record: StepRecord) -> None:
        """The record closes: turn what was kept into statistics."""

    def disarm(self) -> None:
        self.temporary.remove()

    def detach(self) -> None:
        self.disarm()
        self.permanent.remove()

    def guarded(self, fn: F) -> F:
        """`fn` for use as a hook in the user's forward or backward: an error disables this probe instead of
        reaching the user's loop. Hooks work on detached tensors, so they add nothing to the autograd graph."""

        @functools.wraps(fn)
        def safe(*args: Any, **kwargs: Any) -> Any:
            try:
                fn(*args, **kwargs)
            except Exception as exc:
                self.ctx.fail(self, exc)
            return None

        return safe  # type: ignore[return-value]


def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """`torch.stack` of 0-d statistics that may live on different devices (model parallel)."""
    device = tensors[0].device
    return torch.stack([t.to(device) for t in tensors])


def subsample(x: torch.Tensor, samples: int, elements: int) -> torch.Tensor:
    """At most `samples` samples of a (N, C, ...) batch and about `elements` values, keeping every feature
    (dim 1): positions beyond dim 1 are strided. Statistics of activations cost O(elements), not O(batch)."""
    x = x.detach()[:samples]
    if x.dim() <= 2 or x.numel() <= elements:
        return x
    positions = x.flatten(2)  # (n, C, L)
    stride = -(-positions.numel() // elements)
    return positions[:, :, ::stride]
