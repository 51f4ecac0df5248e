"""Differential diagnosis by intervention: re-run the trial with candidate fixes applied and judge what happened.

The fixes of the causes the rules suspect go first, one at a time. When the symptom is present and none of them
removes it, every other fix that applies to the setup is tried too, cheapest and most common first, within the
budget: a cause is confirmed by its fix working, not by a threshold. Then combinations: each failed fix on top of
the working ones (does it add anything?), the failed ones together (two faults can mask each other), and failed
fixes at the LR their own range test suggests (a slow SGD hides any gain in a short trial).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

from torchmedic import signal_names as N
from torchmedic.context import Context
from torchmedic.controls import label_controls
from torchmedic.errors import TorchMedicError
from torchmedic.finding import GONE, STAYS, Finding, Verification
from torchmedic.fixes.registry import FIXES, Applied, apply
from torchmedic.rules.registry import evaluate
from torchmedic.setup import Setup
from torchmedic.symptom import DIVERGED, learned, read_symptom
from torchmedic.trial import TrialResult
from torchmedic.verdict import Verdicts, judge, steps_to_learn

MEASURED = 0.7  # a by-hand cause this likely was measured directly (NaN counted, permuted labels trained, samples
# mixed in eval mode): it explains the symptom without a fix to try, so the other fixes are not tried
INFERRED_BY_HAND = ("data.labels_unrelated",)  # only the user can fix it, and it is read off short trials: patience
# tells it from a slow start
SPEED = ("lr.too_low", "lr.too_high")  # fixes that change only the step size: in a short trial a new LR can beat a
# setup that is merely slow (momentum still building up), so they confirm a cause only when patience does not help
PATIENCE_SHARE = 0.5  # a patient trial of the setup as given takes at most half of what is left of the budget ...
EARLY_PATIENCE = 4  # ... and, before any fix was tried, at most 4x the baseline's steps: the fixes come next
SLOW_MARGIN = 10  # the loss, falling at the rate it did, would learn within 10x the longer trial: worth checking
MAX_OTHERS = 4  # fixes of causes no rule suspected, tried when the suspects do not explain the symptom
MAX_SUSPECTS = 5  # single-fix trials for the causes the rules suspect; more than this are rarely all plausible
MAX_COMBINED = 2  # extra trials for fixes that only work together
# The fixes tried when the rules suspect nothing that works, in this order: the most common causes of a model that
# gives the same output first, each only where its fix changes something.
DIFFERENTIAL = (
    "arch.output_activation",
    "loss.double_softmax",
    "data.unnormalized",
    "data.target_scale",
    "lr.too_high",
    "lr.too_low",
    "init.too_small",
    "data.class_imbalance",
    "data.unshuffled",
    "mode.bn_small_batch",
    "optim.over_regularized",
    "optim.not_updating",
    "loss.task_mismatch",
    "loss.shape_broadcast",
)


def _run(ctx: Context, setup: Setup, key: str, steps: int | None = None) -> TrialResult | None:
    """The trial of `setup`, stopped as soon as it learns (the verdict needs no more), or None when it raised: the
    setup as given trained without raising, so what raises here is a fix, which then simply did not verify."""
    t = ctx.config.thresholds
    try:
        return ctx.trial(setup, key=key, steps=steps, stop_when=lambda m: learned(m, t), measure_before=False)
    except Exception as exc:
        ctx.skipped.append(f"{key}: {type(exc).__name__}: {exc}")
        return None


def _trials_left(ctx: Context) -> int:
    """How many trials as long as the baseline fit in what is left of the budget."""
    return int(ctx.remaining / max(1.2 * ctx.trials["baseline"].seconds, 1e-3))


def _affordable(ctx: Context, steps: int | None = None) -> bool:
    """One more trial (of `steps`, else as long as the baseline) fits in what is left of the budget."""
    baseline = ctx.trials["baseline"]
    cost = baseline.seconds * (steps / max(1, baseline.steps) if steps else 1.0)
    return ctx.remaining >= 1.2 * cost


def _judged(
    ctx: Context, v: Verdicts, reference: TrialResult, result: TrialResult, label: str, partners: Sequence[str] = ()
) -> Verification:
    t = ctx.config.thresholds
    before, after = read_symptom(reference, ctx.task, t), read_symptom(result, ctx.task, t)
    return replace(judge(before, after, reference, result, label, t), partners=tuple(partners))


def _compose(ctx: Context, causes: Sequence[str]) -> Setup | None:
    """A fresh setup with the fixes of every cause in `causes` applied, in stage order: learning-rate fixes last, so
    that they pick the LR for the setup the other fixes made."""
    setup = ctx.setup()
    stages = {"data": 0, "loss": 1, "model": 2, "optim": 3, "lr": 4}
    for cause in sorted(causes, key=lambda c: stages[FIXES[c].stage]):
        outcome = apply(ctx, cause, setup)
        if isinstance(outcome, Applied):
            setup = outcome.setup
    return setup if setup.history else None


def _single(ctx: Context, v: Verdicts, cause: str) -> bool:
    """Try the fix of `cause` alone on the setup as given; True when a trial ran."""
    option = 1 if cause == "mode.bn_small_batch" and (ctx.train[0].size > 2) else 0  # big batches: GroupNorm
    outcome = apply(ctx, cause, ctx.setup(), option)
    if not isinstance(outcome, Applied):
        return False
    ctx.applied[cause] = outcome
    result = _run(ctx, outcome.setup, f"verify {cause}")
    if result is None:
        return False
    v.record(cause, _judged(ctx, v, ctx.trials["baseline"], result, outcome.setup.label))
    return True


def differential(ctx: Context, candidates: list[Finding]) -> Verdicts:
    """The symptom of the baseline trial and the verdict of every fix tried, within the budget."""
    t = ctx.config.thresholds
    baseline = ctx.trials.get("baseline")
    if ctx.untrainable or baseline is None:
        return _unblocked(ctx, candidates) if ctx.signals.get(N.LOSS_ERROR) else Verdicts()
    v = Verdicts(read_symptom(baseline, ctx.task, t), baseline)
    tried = _suspects(ctx, v, candidates)
    if v.stuck and not any(v.passed(c) for c in tried) and label_controls(ctx, _trials_left(ctx)):
        candidates = [*candidates, *evaluate(ctx.signals, "pre", t, v)]
    if v.stuck and any(f.cause in INFERRED_BY_HAND for f in candidates) and _slow_start(ctx, v, falling_only=False):
        return v  # labels that only look unrelated in a short trial: the model learns them when trained longer
    if v.stuck and not any(v.passed(c) for c in tried) and not explained_by_hand(candidates):
        if _slow_start(ctx, v, falling_only=True):
            return v
        _others(ctx, v, tried)
    _combinations(ctx, v, [c for c in tried if c in v])
    passed = [c for c in v.by_cause if v.passed(c)]
    suspected = {f.cause for f in candidates}
    unexplained = not passed or all(c in SPEED or c not in suspected for c in passed)
    if v.stuck and unexplained and not explained_by_hand(candidates):
        _slow_start(ctx, v, falling_only=False)  # no fix works, only speed, or no rule saw a mechanism: slow, or stuck?
    return v


def _suspects(ctx: Context, v: Verdicts, candidates: list[Finding]) -> list[str]:
    """The fix of each cause a rule suspects, tried alone, most confident first; the causes whose fix ran."""
    tried: list[str] = []
    fixable = [f.cause for f in candidates if f.cause in FIXES and not FIXES[f.cause].by_hand]
    for cause in dict.fromkeys(fixable):
        if len(tried) >= MAX_SUSPECTS or not _affordable(ctx):
            ctx.skipped.append(f"verification of {cause}: out of budget")
            continue
        if _same_fix_tried(cause, tried) or _single(ctx, v, cause):
            tried.append(cause)
    return tried


def _others(ctx: Context, v: Verdicts, tried: list[str]) -> None:
    """The symptom has no suspect whose fix works: every other fix that applies, in DIFFERENTIAL's order, until one
    removes the symptom (at most MAX_OTHERS trials: a cause no rule saw is rarely the fifth one tried)."""
    ran: list[str] = []
    for cause in DIFFERENTIAL:
        if len(ran) >= MAX_OTHERS or not _affordable(ctx):
            return
        if cause in tried or _same_fix_tried(cause, [*tried, *ran]):
            continue
        if _single(ctx, v, cause):
            ran.append(cause)
            if v.passed(cause):
                return


def _unblocked(ctx: Context, candidates: list[Finding]) -> Verdicts:
    """The loss raises on the setup as given, so no trial could run: a suspect's fix that lets the loss compute is
    verified when the fixed setup then learns."""
    t = ctx.config.thresholds
    v = Verdicts()
    for cause in dict.fromkeys(f.cause for f in candidates if f.cause in FIXES and not FIXES[f.cause].by_hand):
        outcome = apply(ctx, cause, ctx.setup())
        if not isinstance(outcome, Applied) or ctx.remaining <= 0:
            continue
        ctx.applied[cause] = outcome
        result = _run(ctx, outcome.setup, f"verify {cause}")
        if result is None:
            continue
        after = read_symptom(result, ctx.task, t)
        verdict = STAYS if after.present else GONE
        effect = after.score if math.isfinite(after.score) else 0.0
        label = f"{outcome.setup.label} (the loss raised before)"
        v.record(cause, Verification(label, "held-out score", math.nan, after.score, verdict, effect))
    return v


def _slow_start(ctx: Context, v: Verdicts, *, falling_only: bool) -> bool:
    """A baseline that shows the symptom may only be slow (a plain SGD, global pooling, a small LR that is still a
    usual one): trained patiently, up to `patience_steps` and half of what is left of the budget, stopping once it
    learns, does it learn? Then there is no symptom to explain, and the verdicts say so. With `falling_only`, only a
    baseline whose loss was falling fast enough is tried (before any other fix)."""
    baseline, t = v.trial, ctx.config.thresholds
    if baseline is None or v.symptom is None or v.symptom.kind == DIVERGED:
        return False
    steps = ctx.config.patience_steps
    if falling_only:
        steps = min(steps, EARLY_PATIENCE * baseline.steps)
    key = f"baseline, trained up to {steps} steps"
    if key in ctx.trials:
        return False
    falling = steps_to_learn(baseline, t) <= steps * SLOW_MARGIN
    if (falling_only and not falling) or not _affordable(ctx, 2 * baseline.steps):
        return False
    deadline = time.perf_counter() + PATIENCE_SHARE * ctx.remaining
    try:
        longer = ctx.trial(ctx.setup(), key, steps=steps, deadline=deadline, stop_when=lambda m: learned(m, t))
    except TorchMedicError:
        raise
    except Exception as exc:
        ctx.skipped.append(f"{key}: {type(exc).__name__}: {exc}")
        return False
    symptom = read_symptom(longer, ctx.task, t)
    if symptom.present:
        ctx.notes.append(f"trained patiently, the setup as given still shows the symptom ({symptom})")
        return False
    ctx.notes.append(f"a slow start: the setup as given learns when trained longer ({symptom})")
    v.symptom, v.trial = symptom, longer
    return True


def explained_by_hand(findings: list[Finding]) -> bool:
    """A cause only the user can fix was measured directly, and likely enough to explain the symptom."""
    return any(f.cause in FIXES and FIXES[f.cause].by_hand and f.confidence >= MEASURED for f in findings)


def _same_fix_tried(cause: str, tried: list[str]) -> bool:
    return any(FIXES[cause] is FIXES[other] for other in tried)


def _combinations(ctx: Context, v: Verdicts, tried: list[str]) -> None:
    passed = [c for c in tried if v.passed(c)]
    failed = [c for c in tried if not v.passed(c)]
    if failed and passed:
        _on_top(ctx, v, passed, failed[:MAX_COMBINED])
    elif len(failed) >= 2 and v.stuck:
        _together(ctx, v, failed[: MAX_COMBINED + 1])
    still = [c for c in failed if not v.passed(c)]
    _at_best_lr(ctx, v, [c for c in still if not c.startswith("lr.")][:MAX_COMBINED])


def _on_top(ctx: Context, v: Verdicts, passed: list[str], failed: list[str]) -> None:
    """Does each failed fix add to the fixes that work? Compared against those fixes applied alone."""
    if len(passed) == 1:
        reference = ctx.trials.get(f"verify {passed[0]}")
    else:
        setup = _compose(ctx, passed)
        reference = None if setup is None or not _affordable(ctx) else _run(ctx, setup, "verify combined")
    if reference is None:
        return
    if not read_symptom(reference, ctx.task, ctx.config.thresholds).present:
        return  # the working fixes already make the model learn: no symptom is left for another cause to explain
    joint = "on top of the fix for " + ", ".join(passed)
    for cause in failed:
        setup = _compose(ctx, [*passed, cause])
        if setup is None or not _affordable(ctx):
            return
        result = _run(ctx, setup, f"verify {cause} on top")
        if result is not None:
            v.record(cause, _judged(ctx, v, reference, result, f"{setup.label} ({joint})", passed))


def _together(ctx: Context, v: Verdicts, failed: list[str]) -> None:
    """Fixes that fail alone may work together (two faults masking each other)."""
    setup = _compose(ctx, failed)
    if setup is None or not _affordable(ctx):
        return
    result = _run(ctx, setup, "verify together")
    if result is None:
        return
    for cause in failed:
        partners = [c for c in failed if c != cause]
        label = f"{setup.label} (together with the fix for {', '.join(partners)})"
        v.record(cause, _judged(ctx, v, ctx.trials["baseline"], result, label, partners))


def _at_best_lr(ctx: Context, v: Verdicts, failed: list[str]) -> None:
    """A fix can be right and still fail at the user's LR (a slow SGD hides any gain in a short trial, a softmax
    removed changes which LR trains). Compare the fixed setup at the LR its range test suggests with the unfixed one
    at the LR its own range test suggests, or, when that test is flat, at the same LR."""
    if not failed or not ctx.spec.lr > 0:
        return
    suggestion = ctx.signals.get(N.LR_RANGE_SUGGESTION)
    for cause in failed:
        outcome = apply(ctx, cause, ctx.setup())
        if not isinstance(outcome, Applied) or not _affordable(ctx):
            return
        try:
            test = ctx.range_test(outcome.setup)
        except Exception as exc:  # the fixed setup's loss refused what some LR made of the outputs
            ctx.skipped.append(f"range test with the fix of {cause}: {type(exc).__name__}: {exc}")
            continue
        lr = test.suggestion if test is not None else None
        if lr is None or abs(math.log10(lr / ctx.spec.lr)) < ctx.config.min_lr_decades:
            continue  # the fixed setup wants about the user's LR: the single-fix trial already said it all
        reference_lr = suggestion if suggestion is not None else lr
        best = _run(ctx, _at_lr(ctx, ctx.setup(), reference_lr), f"baseline at lr {reference_lr:.1e}")
        if best is None or not _affordable(ctx):
            return
        fixed = _at_lr(ctx, outcome.setup, lr)
        result = _run(ctx, fixed, f"verify {cause} at best lr")
        if result is not None:
            label = f"{fixed.label} (at the LR its range test suggests, {lr:.1e}; without it at {reference_lr:.1e})"
            v.record(cause, _judged(ctx, v, best, result, label, ("lr.too_high", "lr.too_low")))


def _at_lr(ctx: Context, setup: Setup, lr: float) -> Setup:
    return setup.but(spec=setup.spec.scaled_lr(lr / setup.spec.lr), history=(*setup.history, f"lr {lr:.1e}"))
