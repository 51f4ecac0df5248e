"""Whether the gradient of the previous step is still in `.grad` whenever backward adds a new one."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch

from torchmedic import signal_names as N
from torchmedic.monitor.context import Context
from torchmedic.monitor.probes.base import Probe, stack
from torchmedic.monitor.record import StepRecord

MAX_BACKWARDS = 16  # enough to see one zeroed gradient among accumulation micro-batches; bounds memory


class CarriedGradProbe(Probe):
    """Hooks the first and last trained parameter for the backward passes of a sampled step. A `zero_grad()`
    anywhere between two optimizer steps leaves `.grad` empty (or zero) before at least one backward."""

    name = "carried_grads"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._stale: list[torch.Tensor | None] = []

    def arm(self, record: StepRecord) -> None:
        self._stale = []
        params = self.ctx.trained_params()
        for p in {id(p): p for p in (params[:1] + params[-1:])}.values():
            self.temporary.add(p.register_hook(self.guarded(self._seen(weakref.ref(p)))))

    def _seen(self, param: weakref.ref[torch.Tensor]) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            p = param()
            if p is None or len(self._stale) >= MAX_BACKWARDS:
                return
            self._stale.append(None if p.grad is None else p.grad.detach().abs().amax())

        return hook

    def before_step(self, record: StepRecord) -> None:
        if not self._stale:
            return
        if any(s is None for s in self._stale):
            record.note(N.GRAD_CARRIED_OVER, False)
        else:  # all present: carried over unless one of them was zeroed in place (zero_grad(set_to_none=False))
            record.put(N.GRAD_STALE_MIN, stack([s for s in self._stale if s is not None]).min())
        record.note(N.GRAD_BACKWARDS, len(self._stale))
        self._stale = []

    def disarm(self) -> None:
        super().disarm()
        self._stale = []
