"""The learning rate, chosen last: an LR range test on the setup as fixed so far (a softmax removed or inputs
standardized change which LR trains), not on the user's.

The range test holds each LR for one step; a whole run at the LR it suggests can die or overfit, so the fix keeps
a third of it (`DiagnoseConfig.long_run_margin`). When the test does not point the way of the finding, the fix
takes the usual step that way: a tenth of a far-too-high LR, or a hundred times a far-too-low one (at least the
usual starting LR of the optimizer family).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torchmedic.clone import OptimizerSpec
from torchmedic.fixes.registry import Applied, Outcome, Refused, fix
from torchmedic.lines import optimizer_line
from torchmedic.remedies.lr_finder import LRFinderResult
from torchmedic.remedies.lr_suggestion import FLAT_MESSAGE
from torchmedic.setup import Setup

if TYPE_CHECKING:
    from torchmedic.context import Context

MINIMUM_DIVISOR = 3.0  # as the range test's own rule: a third of the LR at the loss minimum is stable
BLIND_FACTOR = {-1: 0.1, 1: 100.0}  # the usual step down or up when the range test does not point that way
OUTSIDE_USUAL = 10.0  # a range test that points 10x beyond the LRs people use with the optimizer reads its noise


def lowest(result: LRFinderResult, divisor: float) -> float | None:
    """The LR where the smoothed range-test loss is lowest, divided by `divisor`; None when that is the first LR."""
    finite = [(loss, i) for i, loss in enumerate(result.smoothed) if math.isfinite(loss)]
    if not finite:
        return None
    index = min(finite)[1]
    return result.lrs[index] / divisor if index > 0 else None


def _decades(a: float, b: float) -> float:
    return math.log10(a / b) if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b) else 0.0


def target_lr(ctx: Context, setup: Setup, direction: int) -> tuple[float, str]:
    """The LR to try for `setup`: the range test's suggestion (a third of it for a run) when it lies `direction`
    (-1 lower, +1 higher, 0 either) of the current LR by a real step, else the usual step that way."""
    current, name = setup.spec.lr, setup.spec.name
    result = ctx.range_test(setup)
    if result is None:
        return _blind(ctx, current, name, direction, "no budget left for an LR range test")
    margin, step = ctx.config.long_run_margin, ctx.config.min_lr_decades

    def points(lr: float) -> bool:
        return direction == 0 or direction * _decades(lr, current) >= step

    if result.suggestion is not None:
        target = result.suggestion / margin
        if points(target):
            return target, f"the LR range test suggests {result.suggestion:.2g}, / {margin:g} for a whole run"
    else:
        near = lowest(result, MINIMUM_DIVISOR)
        if near is not None and points(near):
            return near, f"the range test's fall is within its noise; its loss is lowest near lr={near * 3:.2g}"
    if result.suggestion is not None:
        way = "lower" if direction < 0 else "higher"
        flat = f"the range test suggests {result.suggestion:.2g}, not {way}"
    else:
        flat = f"the range test is flat ({result.message.removeprefix(FLAT_MESSAGE).strip(' ()')})"
    return _blind(ctx, current, name, direction, flat)


def _blind(ctx: Context, current: float, name: str, direction: int, why: str) -> tuple[float, str]:
    """The usual step `direction` of the current LR, when the range test says nothing (`why`) about where to go."""
    if direction <= 0:
        return current * BLIND_FACTOR[-1], f"{why}: lr x {BLIND_FACTOR[-1]:g}"
    usual = ctx.config.usual_lr(name)
    raised = current * BLIND_FACTOR[1]
    if raised < usual:
        return usual, f"{why}: the usual starting LR for {name}"
    return raised, f"{why}: lr x {BLIND_FACTOR[1]:g}"


def scaled_lr_line(optimizer: str | None, lr: float | None, direction: int) -> str:
    """The LR fix's line when only the optimizer's class and LR are known (the live monitor reads nothing more): the
    usual step the way the finding points, in the user's optimizer class."""
    name = optimizer or "Adam"
    if lr is None or not math.isfinite(lr) or lr <= 0:
        return f"optimizer = torch.optim.{name}(model.parameters(), lr=...)  # torchmedic.find_lr measures one"
    target = lr * BLIND_FACTOR[1 if direction > 0 else -1]
    return f"optimizer = torch.optim.{name}(model.parameters(), lr={target:.2g})  # was lr={lr:.2g}"


def with_lr(ctx: Context, setup: Setup, target: float, source: str, option: int, *, near: bool = False) -> Outcome:
    """`setup` at LR `target` (a tenth of it for option 1, when `target` itself did not verify); refused when the
    LR would barely change, unless `near` (the setup failed at its LR, so even a small step is worth a trial)."""
    current = setup.spec.lr
    if option == 1:
        source += f", x {ctx.config.fallback_lr_factor:g} as {target:.2g} itself did not verify"
        target *= ctx.config.fallback_lr_factor
    t = ctx.config.thresholds
    low, high = t.typical_sgd_lr if setup.spec.name == "SGD" else t.typical_adaptive_lr
    if target > high * OUTSIDE_USUAL:
        source += f", capped at {high * OUTSIDE_USUAL:.2g}: 10x the LRs people use with {setup.spec.name}"
        target = high * OUTSIDE_USUAL
    elif target < low / OUTSIDE_USUAL:
        source += f", raised to {low / OUTSIDE_USUAL:.2g}: a tenth of the LRs people use with {setup.spec.name}"
        target = low / OUTSIDE_USUAL
    target = float(f"{target:.2g}")  # the LR your script gets is the one the trial verified
    close = abs(_decades(target, current)) < (0.01 if near else ctx.config.min_lr_decades)
    if math.isfinite(current) and current > 0 and close:
        return Refused(f"lr left at {current:.2g}: {source}, close to it", needless=True)
    spec = _scaled(setup.spec, target)
    what = f"lr {current:.2g} -> {target:.2g} ({source})"
    return Applied(setup.but(spec=spec), what, optimizer_line(spec, setup.inner))


def _scaled(spec: OptimizerSpec, target: float) -> OptimizerSpec:
    current = spec.lr
    return spec.scaled_lr(target / current) if math.isfinite(current) and current > 0 else spec.with_lr(target)


@fix("lr.too_high", stage="lr", options=2)
def lower_lr(ctx: Context, setup: Setup, option: int) -> Outcome:
    """A lower LR: the range test's for the setup as fixed, or a tenth of the current one."""
    return with_lr(ctx, setup, *target_lr(ctx, setup, -1), option)


@fix("lr.too_low", stage="lr", options=2)
def raise_lr(ctx: Context, setup: Setup, option: int) -> Outcome:
    """A higher LR: the range test's for the setup as fixed, or a hundred times the current one."""
    return with_lr(ctx, setup, *target_lr(ctx, setup, 1), option)


def retuned_lr(ctx: Context, setup: Setup, option: int) -> Outcome:
    """The range test's LR for a setup that other fixes changed, whichever way it lies (repair's variants: the fixed
    setup did not learn convincingly at its LR, so the LR is worth changing even by a little)."""
    result = ctx.range_test(setup)
    if result is None:
        return Refused("no budget left for an LR range test of the fixed setup")
    if result.suggestion is None and lowest(result, MINIMUM_DIVISOR) is None:
        return Refused(f"the range test on the fixed setup finds no better LR: {result.message}")
    return with_lr(ctx, setup, *target_lr(ctx, setup, 0), option, near=True)
