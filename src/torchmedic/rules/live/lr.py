"""Live rules for the learning rate: too high (diverges, kills units), too low, and schedules that drive it to 0."""

from __future__ import annotations

import math

from torchmedic import signal_names as N
from torchmedic.finding import Evidence, format_value
from torchmedic.fixes.lr import scaled_lr_line
from torchmedic.rules.live.common import (
    LIKELY,
    MECHANISM_LIVE,
    POSSIBLE,
    SPECIFIC,
    SUGGESTIVE,
    batches_sorted,
    finite,
    inputs_unnormalized,
    nonfinite_at_start,
    number,
)
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds


def _lr(s: Signals) -> float | None:
    lrs = [v for v in s.scoped(N.LR).values() if finite(v)]
    return max(lrs) if lrs else None


def _explained_elsewhere(s: Signals, t: Thresholds) -> bool:
    """Divergence that another cause explains: piled-up gradients, non-finite weights, non-finite or unscaled data
    (huge inputs make every step huge), batches sorted by class (each new class raises the loss), huge regression
    targets."""
    if (number(s, N.GRAD_STALE_MIN) or 0) > 0 or inputs_unnormalized(s, t) or batches_sorted(s, t):
        return True
    if nonfinite_at_start(s):
        return True
    if s.get(N.INPUT_NONFINITE_STEPS, 0) or s.get(N.TARGET_NONFINITE_STEPS, 0):
        return True
    scale = max(abs(number(s, N.TARGET_MEAN) or 0.0), number(s, N.TARGET_STD) or 0.0)
    return s.get(N.TARGET_KIND) == "float" and scale >= t.max_target_scale


def _dead_rise(s: Signals) -> tuple[str, float, float] | None:
    """The layer whose dead-unit fraction rose most since the first sampled steps: (layer, now, baseline)."""
    best: tuple[str, float, float] | None = None
    for name in (N.ACT_DEAD_FRACTION, N.GRAD_DEAD_FRACTION):
        baselines = s.scoped(N.derived(name, "baseline"))
        for scope, now in s.scoped(name).items():
            base = baselines.get(scope)
            if not finite(now) or not finite(base):
                continue
            if best is None or now - base > best[1] - best[2]:
                best = (scope, float(now), float(base))  # type: ignore[arg-type]
    return best


@rule("lr.too_high", seen_by="live")
def too_high(s: Signals, t: Thresholds) -> Claim | None:
    """Steps far larger than the weights overshoot: the loss grows or goes non-finite, ReLU units die."""
    if _explained_elsewhere(s, t):
        return None
    peak = number(s, N.UPDATE_RATIO_MAX_PEAK)
    fast = peak is not None and peak >= t.max_run_update_ratio
    lr = _lr(s)
    lr_text = f" at lr={lr:g}" if lr is not None else ""
    lower = scaled_lr_line(s.get(N.OPTIM_CLASS), lr, -1)
    ratio = Evidence("largest update/weight ratio of recent sampled steps", peak, "~1e-3")
    loss, first = s.get(N.LOSS), number(s, N.LOSS_FIRST)
    if loss is not None and not finite(loss) and first is not None:
        return Claim(
            MECHANISM_LIVE if fast else POSSIBLE,
            f"the loss became {loss}{lr_text} after starting at {format_value(first)}: the updates overshoot "
            "until the weights overflow.",
            [Evidence(N.LOSS, loss, "finite, falling"), ratio],
            "Lower the learning rate 10x (or clip gradients).",
            lower + "\ntorch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # before optimizer.step()",
        )
    if not fast:
        return None
    dead = _dead_rise(s)
    if dead is not None and dead[1] - dead[2] >= t.dead_rise:
        layer, now, base = dead
        return Claim(
            MECHANISM_LIVE,
            f"units are dying in {layer}{lr_text}: {now:.0%} of them are now dead (zero output, zero gradient) "
            f"against {base:.0%} at the start; updates of up to {format_value(peak)} of the weights' size push "
            "ReLU inputs below zero for every sample, and dead units never recover.",
            [
                Evidence("dead units now, at the first sampled steps", [now, base], "no rise", layer),
                ratio,
            ],
            "Lower the learning rate 10x (or warm it up); LeakyReLU keeps units from dying for good.",
            lower,
        )
    recent = number(s, N.LOSS_RECENT)
    if recent is not None and first and recent >= t.loss_rise * first and s.get(N.MONITOR_SAMPLED_STEPS, 0) > 1:
        return Claim(
            SUGGESTIVE,
            f"the loss rose from {format_value(first)} to {format_value(recent)}{lr_text}: steps of up to "
            f"{format_value(peak)} of the weights' size overshoot.",
            [Evidence("recent loss / first loss", recent / first, "< 1"), ratio],
            "Lower the learning rate 10x.",
            lower,
        )
    return None


@rule("lr.too_low", seen_by="live")
def too_low(s: Signals, t: Thresholds) -> Claim | None:
    """Updates a million times smaller than the weights cannot leave the initial solution."""
    median = number(s, N.UPDATE_RATIO_MEDIAN_RECENT)
    if median is None or s.get(N.MONITOR_SAMPLED_STEPS, 0) < t.min_trend_samples or median >= t.min_run_update_ratio:
        return None
    fraction = number(s, N.LR_FRACTION)
    if fraction is not None and fraction <= 10.0**-t.lr_collapse_decades:
        return None  # the schedule took it down: lr.schedule_collapse
    grad, grad_first = number(s, N.GRAD_NORM), number(s, N.GRAD_NORM_FIRST)
    if not grad or (grad_first and grad < t.min_grad_kept * grad_first):
        return None  # the gradient vanished (optim.not_updating): the LR is not what makes steps small
    dead = _dead_rise(s)
    if dead is not None and dead[1] - dead[2] >= t.dead_rise:
        return None  # units died and pass no gradient: the LR is not what makes steps small
    spread = number(s, N.OUTPUT_BETWEEN_STD)
    if spread is not None and spread <= t.min_output_spread:
        return None  # the signal does not reach the output (init.too_small): a larger LR would not help
    recent, first = number(s, N.LOSS_RECENT), number(s, N.LOSS_FIRST)
    if recent is None or not first or recent < (1 - t.min_loss_progress) * first:
        return None  # the loss moved: it learns, however slowly
    lr = _lr(s)
    return Claim(
        LIKELY,
        f"each step moves the weights by {format_value(median)} of their size{f' at lr={lr:g}' if lr else ''} and "
        f"the loss is still {recent / first:.0%} of where it started.",
        [
            Evidence("median update/weight ratio", median, "~1e-3"),
            Evidence("recent loss / first loss", recent / first, f"< {1 - t.min_loss_progress:g}"),
        ],
        "Raise the learning rate by 10-1000x (torchmedic.find_lr suggests one).",
        scaled_lr_line(s.get(N.OPTIM_CLASS), lr, 1),
    )


@rule("lr.schedule_collapse", seen_by="live")
def schedule_collapse(s: Signals, t: Thresholds) -> Claim | None:
    """A schedule stepped too often (per batch instead of per epoch) takes the LR to ~0 early and keeps it there."""
    since = (s.get(N.LR_DECADE_STEPS) or {}).get(str(t.lr_collapse_decades))
    step = s.get(N.MONITOR_STEP)
    if since is None or step is None or step - since < t.lr_collapse_share * since:
        return None
    fraction, peak = number(s, N.LR_FRACTION), max(s.scoped(N.LR_PEAK).values(), default=None)
    lr = _lr(s)
    drop = f"{-math.log10(fraction):.0f} orders of magnitude" if fraction else "to 0"
    return Claim(
        SPECIFIC,
        f"the learning rate fell {drop} below its peak ({format_value(peak)} -> {format_value(lr)}) by step "
        f"{since} and has stayed there for {step - since} steps: training has effectively stopped. A scheduler "
        "stepped every batch with a step size meant for epochs?",
        [
            Evidence(
                "learning rate now / peak", fraction, f"> 1e-{t.lr_collapse_decades} until the last few % of the run"
            ),
            Evidence("step at which it fell 1000x below the peak", since, "near the end of training"),
        ],
        "Step the scheduler once per epoch (or size it in batches: step_size = epochs_between_drops * len(loader)).",
        "for epoch in range(epochs):\n    for x, y in loader:\n        ...\n        "
        "optimizer.step()\n    scheduler.step()  # once per epoch",
    )
