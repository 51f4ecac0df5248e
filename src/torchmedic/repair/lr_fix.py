"""The learning rate, chosen last: an LR range test on the setup as repaired so far (a softmax removed or inputs
standardized change which LR trains), not on the user's."""

from __future__ import annotations

import math

from torchmedic.finding import Finding
from torchmedic.remedies.lr_finder import LRFinderResult, range_test
from torchmedic.remedies.lr_suggestion import FLAT_MESSAGE
from torchmedic.repair.draft import Draft
from torchmedic.repair.lines import optimizer_line
from torchmedic.repair.remedy import Applied, Outcome, Refused, remedy
from torchmedic.repair.workspace import Workspace

MINIMUM_DIVISOR = 3.0  # as the range test's own rule: a third of the LR at the loss minimum is stable
BLIND_FACTOR = {"lr.too_high": 0.1, "lr.too_low": 100.0}  # the diagnosis's own guess when the range test is flat


def range_result(ws: Workspace, draft: Draft) -> LRFinderResult:
    """The range test of this draft, run once per distinct draft (attempts that differ only in LR share it), on as
    many batches as diagnose's trials cycle: more distinct batches make the curve too noisy to read."""
    key = draft.history
    if key not in ws.range_tests:
        batches = list(draft.train[: len(ws.ctx.train)])
        ws.range_tests[key] = range_test(
            draft.model(fresh=True), batches, draft.loss_fn, draft.spec, num_iter=ws.config.lr_range_steps
        )
    return ws.range_tests[key]


def lowest(result: LRFinderResult, divisor: float) -> float | None:
    """The LR where the smoothed range-test loss is lowest, divided by `divisor`; None when that is the first LR."""
    finite = [(loss, i) for i, loss in enumerate(result.smoothed) if math.isfinite(loss)]
    if not finite:
        return None
    index = min(finite)[1]
    return result.lrs[index] / divisor if index > 0 else None


def _flat_choice(
    ws: Workspace, draft: Draft, result: LRFinderResult, findings: list[Finding]
) -> tuple[float, str] | Refused:
    """An LR when the range test's fall is within its noise: where its loss was lowest, if that lies the way the
    finding points, else the diagnosis's own guess (x100 or /10). A raised LR is at least the optimizer family's usual
    starting LR, as diagnose's own intervention raises it: a slow starter's range test shows little at any LR."""
    current, name = draft.spec.lr, draft.spec.name
    near = lowest(result, MINIMUM_DIVISOR)
    factors = [BLIND_FACTOR[f.cause] for f in findings if f.cause in BLIND_FACTOR]
    usual = ws.ctx.config.usual_lr(name)
    flat = f"the range test is flat ({result.message.removeprefix(FLAT_MESSAGE).strip(' ()')})"
    if factors and factors[0] > 1 and max(near or 0.0, current * factors[0]) < usual:
        return usual, f"{flat}: the usual starting LR for {name}"
    if near is not None and (not factors or (near > current) == (factors[0] > 1)):
        return (
            near,
            f"the range test's fall is within its noise; its loss is lowest near lr={near * MINIMUM_DIVISOR:.2g}",
        )
    if factors:
        return current * factors[0], f"{flat}: lr x {factors[0]:g}"
    return Refused(f"the range test on the repaired setup finds no better LR: {result.message}")


@remedy("lr.too_high", "lr.too_low", stage="lr", options=2)
def choose_lr(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """The range test's LR for the repaired setup, less a margin for a whole run at it (option 1: a tenth of that,
    when it did not verify)."""
    current = draft.spec.lr
    result = range_result(ws, draft)
    if result.suggestion is not None:
        margin = ws.config.long_run_margin
        target = result.suggestion / margin
        source = f"the LR range test on the repaired setup suggests {result.suggestion:.2g}, / {margin:g} for a run"
    else:
        found = _flat_choice(ws, draft, result, findings)
        if isinstance(found, Refused):
            return found
        target, source = found
    if option == 1:
        source += f", x {ws.config.fallback_lr_factor:g} as {target:.2g} itself did not verify"
        target *= ws.config.fallback_lr_factor
    target = float(f"{target:.2g}")  # the LR your script gets is the one the pilot verified
    if math.isfinite(current) and current > 0 and abs(math.log10(target / current)) < ws.config.min_lr_decades:
        return Refused(f"lr left at {current:.2g}: {source}, close to it", needless=True)
    spec = (
        draft.spec.scaled_lr(target / current) if math.isfinite(current) and current > 0 else draft.spec.with_lr(target)
    )
    return Applied(
        draft.but(spec=spec), f"lr {current:.2g} -> {target:.2g} ({source})", optimizer_line(spec, draft.inner)
    )
