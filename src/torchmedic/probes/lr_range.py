"""A short LR range test on a copy, run when the baseline trial does not learn: where would the loss fall?"""

from __future__ import annotations

from torchmedic.context import Context
from torchmedic.probes.registry import probe
from torchmedic.remedies.lr_finder import range_test


def _not_learning(ctx: Context) -> bool:
    gain = ctx.signals.get("trial.held_out_gain")
    return ctx.untrainable is None and gain is not None and (gain != gain or gain < ctx.config.min_gain)


@probe("lr_range", order=105, when=_not_learning, steps=-2)
def lr_range(ctx: Context) -> None:
    result = range_test(ctx.copy(), list(ctx.train), ctx.loss_fn, ctx.spec, num_iter=ctx.config.lr_range_steps)
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
