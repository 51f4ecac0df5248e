"""A short LR range test on a copy, run when the baseline trial does not learn: where would the loss fall?"""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.context import Context
from torchmedic.probes.registry import probe
from torchmedic.probes.trial_probe import stuck


@probe("lr_range", order=105, when=stuck, steps=-2)
def lr_range(ctx: Context) -> None:
    result = ctx.range_test(ctx.setup())
    if result is None:
        return
    s = ctx.signals
    s.emit(N.LR_RANGE_FLAT, result.flat)
    s.emit(N.LR_RANGE_METHOD, result.method)
    s.emit(N.LR_RANGE_CONFIDENCE, result.confidence)
    s.emit(N.LR_RANGE_STOP, result.stop.value)
    s.emit(N.LR_RANGE_LRS, list(result.lrs))
    s.emit(N.LR_RANGE_LOSSES, list(result.smoothed))
    if result.suggestion is not None:
        s.emit(N.LR_RANGE_SUGGESTION, result.suggestion)
    finite = [(loss, lr) for lr, loss in zip(result.lrs, result.smoothed, strict=False) if loss == loss]
    if finite:
        s.emit(N.LR_RANGE_BEST_LR, min(finite)[1])
