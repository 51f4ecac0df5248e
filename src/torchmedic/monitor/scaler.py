"""Steps a mixed-precision `GradScaler` skips: it calls `optimizer.step()` only when the unscaled gradients are
finite, so a skipped step fires no optimizer hook. Wrapping `GradScaler.step` sees each skip and the loss scale."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger("torchmedic.monitor")

OnSkip = Callable[[torch.optim.Optimizer, float], None]  # (the optimizer whose step was skipped, the loss scale)


class ScalerWatch:
    """While installed, calls `on_skip` after every `GradScaler.step(optimizer)` that found inf or NaN gradients
    and skipped the update; `remove()` puts the original method back."""

    def __init__(self, on_skip: OnSkip) -> None:
        self.on_skip = on_skip
        self._original: Any = None

    def install(self) -> None:
        if self._original is not None:
            return
        original = self._original = torch.amp.GradScaler.step

        @functools.wraps(original)
        def step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
            result = original(scaler, optimizer, *args, **kwargs)
            try:
                if skipped(scaler, optimizer):
                    self.on_skip(optimizer, float(scaler.get_scale()))
            except Exception as exc:  # the user's step has happened; a failure here must not reach their loop
                log.warning("torchmedic could not read the GradScaler (%s: %s)", type(exc).__name__, exc)
            return result

        setattr(torch.amp.GradScaler, "step", step)  # noqa: B010  (a method replaced on the class)

    def remove(self) -> None:
        if self._original is not None:
            setattr(torch.amp.GradScaler, "step", self._original)  # noqa: B010
            self._original = None


def skipped(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer) -> bool:
    """Whether the scaler's latest step of `optimizer` found non-finite gradients (and so did not step)."""
    if not scaler.is_enabled():
        return False
    state = scaler._per_optimizer_states.get(id(optimizer), {})
    found = state.get("found_inf_per_device", {})
    return any(float(v) > 0 for v in found.values())
