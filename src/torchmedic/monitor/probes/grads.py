"""Gradient norms per parameter and overall, parameters left without a gradient, and units whose gradient is zero."""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic import stats
from torchmedic.monitor.probes.base import Probe, stack
from torchmedic.monitor.record import StepRecord


class GradProbe(Probe):
    """Reads `.grad` of the trained parameters just before the optimizer uses it."""

    name = "grads"

    def before_step(self, record: StepRecord) -> None:
        params = self.ctx.trained_params()
        with_grad = [p for p in params if p.grad is not None and not p.grad.is_sparse]
        record.note(N.GRAD_PARAMS, len(params))
        record.note(N.GRAD_NONE, sum(p.grad is None for p in params))
        if not with_grad:
            return
        grads = [p.grad.detach() for p in with_grad if p.grad is not None]
        norms = stats.grad_norms(grads)
        record.put_scoped(N.GRAD_NORM, norms, [self.ctx.name(p) for p in with_grad])
        record.put(N.GRAD_NORM, norms.norm())
        units = [
            (p, g) for p, g in zip(with_grad, grads, strict=True) if id(p) in self.ctx.unit_params and g.dim() >= 2
        ]
        if units:  # a unit (row) whose gradient is exactly zero on the whole batch does not learn: dead
            dead = stack([(g.flatten(1).abs().amax(dim=1) == 0).float().mean() for _, g in units])
            record.put_scoped(N.GRAD_DEAD_FRACTION, dead, [self.ctx.name(p) for p, _ in units])
        output = next((g for p, g in zip(with_grad, grads, strict=True) if id(p) == self.ctx.output_param), None)
        if output is not None:
            record.put(N.GRAD_OUTPUT_NORM, output.norm())
