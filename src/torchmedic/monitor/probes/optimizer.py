"""Learning rates and weight decay of each group, and whether the optimizer holds the model's parameters."""

from __future__ import annotations

import torch

from torchmedic import signal_names as N
from torchmedic.monitor.probes.base import Probe
from torchmedic.monitor.record import StepRecord

MAX_NAMES = 8  # parameter names quoted as evidence; counts carry the rest


def as_float(value: object) -> float:
    """A hyperparameter that may be a tensor (capturable optimizers)."""
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)  # type: ignore[arg-type]


class OptimizerProbe(Probe):
    """Reads the optimizer's param groups and compares its parameters with the model's (no device work beyond
    reading tensor hyperparameters)."""

    name = "optimizer"

    def before_step(self, record: StepRecord) -> None:
        optimizer = self.ctx.optimizer
        if optimizer is None:
            return
        record.note(N.OPTIM_CLASS, type(optimizer).__name__)
        for i, group in enumerate(optimizer.param_groups):
            if N.LR in group:
                record.note(N.LR, as_float(group[N.LR]), f"group{i}")
        record.note(
            N.OPTIM_WEIGHT_DECAY,
            max((as_float(g.get("weight_decay", 0.0)) for g in optimizer.param_groups), default=0.0),
        )
        model = self.ctx.model
        if model is None:
            return
        held = {id(p) for p in self.ctx.optimizer_params()}
        own = {id(p) for p in model.parameters()}
        # held but not the model's, and without gradient: left over from a model that no longer runs
        foreign = [p for p in self.ctx.optimizer_params() if id(p) not in own and p.requires_grad and p.grad is None]
        # the model's, with a gradient, but never updated
        unheld = [self.ctx.name(p) for p in model.parameters() if id(p) not in held and p.grad is not None]
        record.note(N.OPTIM_PARAMS, len(held))
        record.note(N.OPTIM_FOREIGN, len(foreign))
        record.note(N.OPTIM_UNHELD, len(unheld))
        record.note(N.OPTIM_UNHELD_NAMES, unheld[:MAX_NAMES])
