"""A short LR range test on a copy, run when the baseline trial does not learn: where would the loss fall?"""

from __future__ import annotations

from torchmedic.context import Context
from torchmedic.probes.registry import probe
from torchmedic.probes.trial_probe import stuck


@probe("lr_range", order=105, when=stuck, steps=-2)
def lr_range(ctx: Context) -> None:
    result = ctx.range_test(ctx.setup())
    s = ctx.signals
    s.emit("lr_range.flat", result.flat)
    s.emit("lr_range.method", result.method)
    s.emit("lr_range.confidence", result.confidence)
    s.emit("lr_range.stop", result.stop.value)
    if result.suggestion is not None:
        s.emit("lr_range.suggestion", result.suggestion)
    finite = [(loss, lr) for lr, loss in zip(result.lrs, result.smoothed, strict=False) if loss == loss]
    if finite:
        s.emit("lr_range.best_lr", min(finite)[1])
