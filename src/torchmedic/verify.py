"""Verification by intervention: re-run the trial with candidate fixes applied and record what happened.

One fix at a time first. When some fixes remove the symptom and others do not, each of the others is tried on
top of the working ones (does it add anything?); when none works alone, the failed ones are tried together (two
faults can mask each other). The rules read the outcome from the `verify.<cause>.*` signals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torchmedic.config import DiagnoseConfig
from torchmedic.context import Context
from torchmedic.errors import TorchMedicError
from torchmedic.finding import Finding
from torchmedic.interventions import INTERVENTIONS, suggested_lr
from torchmedic.probes.trial_probe import control_setup, emit_trial
from torchmedic.rules.pre.common import RANK, verdict_at, verification
from torchmedic.trial import TrialResult, TrialSetup

MAX_INTERVENTIONS = 5  # single-fix trials; more candidates than this are rarely all plausible
MAX_COMBINED = 2  # extra trials for fixes that only work together


def _metric_value(result: TrialResult, metric: str) -> float:
    held = result.after_held_out
    return held.gain if metric == "held_out_gain" else float(getattr(held, metric) or 0.0)


def _compose(ctx: Context, causes: Sequence[str]) -> TrialSetup | None:
    """A fresh copy with the fixes of every cause in `causes` applied; learning-rate fixes last, so that they
    pick the LR for the setup the other fixes made."""
    setup: TrialSetup | None = ctx.setup("")
    for cause in sorted(causes, key=lambda c: c.startswith("lr.")):
        fixed = INTERVENTIONS[cause].fn(ctx, setup) if setup is not None else None
        setup = fixed if fixed is not None else setup
    return setup


def _run(ctx: Context, setup: TrialSetup, key: str) -> TrialResult | None:
    try:
        return ctx.trial(setup, key=key)
    except TorchMedicError:
        raise
    except Exception as exc:
        ctx.skipped.append(f"{key}: {type(exc).__name__}: {exc}")
        return None


def _record(
    ctx: Context,
    cause: str,
    result: TrialResult,
    reference: str,
    baseline: TrialResult,
    partners: Sequence[str] = (),
    joint: str = "",
) -> None:
    """Record the trial under `verify.<cause>` unless an earlier one for this cause had a better verdict: a fix
    that worked alone is not undone by a combination that did not."""
    attempt = f"attempt.{cause}.{len(ctx.trials)}"
    for prefix in (attempt, f"verify.{cause}"):
        metric = INTERVENTIONS[cause].metric
        emit_trial(ctx.signals, prefix, result)
        ctx.signals.emit(f"{prefix}.metric", metric)
        ctx.signals.emit(f"{prefix}.baseline", _metric_value(baseline, metric))
        ctx.signals.emit(f"{prefix}.reference", reference)
        ctx.signals.emit(f"{prefix}.joint", joint)
        ctx.signals.emit(f"{prefix}.partners", list(partners))
        if prefix == attempt:
            new, old = verdict_at(ctx.signals, attempt, ctx.config), verification(ctx.signals, cause, ctx.config)
            if old is not None and new is not None and RANK[new.verdict] <= RANK[old.verdict]:
                return


def _affordable(ctx: Context) -> bool:
    cost = ctx.trials["baseline"].seconds
    return ctx.remaining >= 1.2 * cost


def verify(ctx: Context, candidates: list[Finding], config: DiagnoseConfig) -> None:
    """Run the interventions for the candidates, most confident first, while the budget allows."""
    if ctx.untrainable or "baseline" not in ctx.trials:
        return
    baseline = ctx.trials["baseline"]
    tried: list[str] = []
    for finding in candidates:
        cause = finding.cause
        if cause not in INTERVENTIONS or cause in tried or finding.verification is not None:
            continue
        if len(tried) >= MAX_INTERVENTIONS or not _affordable(ctx):
            ctx.skipped.append(f"verification of {cause}: out of budget")
            continue
        setup = INTERVENTIONS[cause].fn(ctx, ctx.setup(""))
        result = None if setup is None else _run(ctx, setup, f"verify {cause}")
        if result is not None:
            _record(ctx, cause, result, "trial", baseline)
            tried.append(cause)
    checks = {cause: verification(ctx.signals, cause, config) for cause in tried}
    passed = [cause for cause in tried if checks[cause] is not None and checks[cause].passed]  # type: ignore[union-attr]
    failed = [cause for cause in tried if cause not in passed]
    if failed and passed:
        _on_top(ctx, passed, failed[:MAX_COMBINED])
    elif len(failed) >= 2:
        _together(ctx, failed[: MAX_COMBINED + 1], baseline)
    still = [c for c in failed if not (v := verification(ctx.signals, c, config)) or not v.passed]
    _at_best_lr(ctx, [c for c in still if not c.startswith("lr.")][:MAX_COMBINED])


def _on_top(ctx: Context, passed: list[str], failed: list[str]) -> None:
    """Does each failed fix add to the fixes that work? Compared against those fixes applied alone."""
    if len(passed) == 1:
        reference_key, reference = f"verify {passed[0]}", f"verify.{passed[0]}"
    else:
        reference_key, reference = "verify combined", "verify.combined"
        setup = _compose(ctx, passed)
        if setup is None or not _affordable(ctx) or _run(ctx, setup, reference_key) is None:
            return
        emit_trial(ctx.signals, reference, ctx.trials[reference_key])
    base = ctx.trials[reference_key]
    if base.after_held_out.gain >= ctx.config.min_gain:
        return  # the working fixes already make the model learn: no symptom is left for another cause to explain
    for cause in failed:
        setup = _compose(ctx, [*passed, cause])
        if setup is None or not _affordable(ctx):
            return
        result = _run(ctx, setup, f"verify {cause} on top")
        if result is not None:
            _record(ctx, cause, result, reference, base, passed, joint="on top of the fix for " + ", ".join(passed))


def _at_best_lr(ctx: Context, failed: list[str]) -> None:
    """A fix can be right and still fail at the user's LR (a slow SGD hides any gain in a short trial). Compare
    the fixed setup and the unfixed one each at the LR the range test suggests for it."""
    if not failed:
        return
    best_setup = control_setup(ctx, "baseline")
    if not _affordable(ctx):
        return
    best = ctx.trials["baseline"] if best_setup.spec == ctx.spec else _run(ctx, best_setup, best_setup.label)
    if best is None:
        return
    emit_trial(ctx.signals, "verify.baseline_best", best)
    for cause in failed:
        fixed = INTERVENTIONS[cause].fn(ctx, ctx.setup(""))
        if fixed is None or not _affordable(ctx):
            return
        lr = suggested_lr(ctx, fixed)
        if lr is None or abs(math.log10(lr / ctx.spec.lr)) < 0.5:
            continue  # the fixed setup wants about the user's LR: the single-fix trial already said it all
        fixed = fixed.but(label=f"{fixed.label} at lr {lr:.1e}", spec=fixed.spec.scaled_lr(lr / ctx.spec.lr))
        result = _run(ctx, fixed, f"verify {cause} at best lr")
        if result is not None:
            joint = f"each at the LR its range test suggests: {lr:.1e} vs {best.lr:.1e} without the fix"
            _record(ctx, cause, result, "verify.baseline_best", best, ("lr.too_high", "lr.too_low"), joint)


def _together(ctx: Context, failed: list[str], baseline: TrialResult) -> None:
    """Fixes that fail alone may work together (two faults masking each other)."""
    setup = _compose(ctx, failed)
    if setup is None or not _affordable(ctx):
        return
    result = _run(ctx, setup, "verify together")
    if result is None:
        return
    for cause in failed:
        others = ", ".join(c for c in failed if c != cause)
        partners = [c for c in failed if c != cause]
        _record(ctx, cause, result, "trial", baseline, partners, joint=f"together with the fix for {others}")
