"""The batch size BatchNorm layers normalize over during training."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchmedic import signal_names as N
from torchmedic.monitor.context import Context, unwrap
from torchmedic.monitor.probes.base import Probe
from torchmedic.monitor.record import StepRecord


class BatchNormProbe(Probe):
    """Forward pre-hooks on BatchNorm layers for a sampled step; reads shapes only (no device work)."""

    name = "batchnorm"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._smallest: int | None = None

    def arm(self, record: StepRecord) -> None:
        self._smallest = None
        model = self.ctx.model
        if model is None:
            return
        for module in unwrap(model).modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                self.temporary.add(module.register_forward_pre_hook(self.guarded(self._seen)))

    def _seen(self, module: nn.Module, args: Any) -> None:
        if module.training and torch.is_grad_enabled() and args and isinstance(args[0], torch.Tensor):
            size = int(args[0].shape[0]) if args[0].dim() > 1 else 1
            self._smallest = size if self._smallest is None else min(self._smallest, size)

    def before_step(self, record: StepRecord) -> None:
        if self._smallest is not None:
            record.note(N.BN_BATCH_SIZE, self._smallest)
