"""Rules for the learning rate: steps that overshoot, and steps too small to leave the start."""

from __future__ import annotations

import math

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.rules.pre.common import INFERRED, confirm, diverged, fixed_without, fmt, stuck, symptom_evidence
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts, steps_to_learn

LONG_RUN = (
    " Over thousands of steps, a third of the LR that trains fastest in a short run is safer: the fix keeps a third"
    " of the range test's suggestion."
)
# --- what raises the prior of lr.too_high above INFERRED, each a separate sign of steps that overshoot ---
RUNAWAY = 0.2  # every step changes the weights by a tenth of their norm or more
KILLED = 0.15  # half the units feeding a layer died within the trial
FAR = 0.15  # the range test finds the loss falling fastest >= 100x lower
UNUSUAL = 0.1  # the LR is 3x beyond what people use with this optimizer
EXPLODED = 0.1  # the held-out loss ended far above where it started
MAX_HIGH_PRIOR = 0.8  # all of these can also come from unscaled inputs or a bad init: never sure before the fix
# --- what raises the prior of lr.too_low ---
TINY_STEPS = 0.2  # steps change the weights by less than a ten-thousandth
FAR_UP = 0.2  # the range test finds the loss falling fastest >= 100x higher
UNUSUAL_LOW = 0.1  # the LR is 3x below what people use with this optimizer


def _dead_jump(s: Signals) -> tuple[str, float] | None:
    """The layer whose share of dead input units rose the most during the trial."""
    before, after = s.scoped(N.ACT_IN_DEAD), s.scoped(N.ACT_DEAD_AFTER)
    jumps = {k: after[k] - before.get(k, 0.0) for k in after}
    if not jumps:
        return None
    layer = max(jumps, key=jumps.__getitem__)
    return layer, jumps[layer]


def typical(s: Signals, t: Thresholds) -> tuple[float, float]:
    """The LR range people use with this optimizer class (for SGD: of the effective LR, momentum included)."""
    return t.typical_sgd_lr if s.get(N.OPTIM_CLASS) == "SGD" else t.typical_adaptive_lr


def effective_lr(s: Signals) -> float | None:
    """The step size that matters: SGD with momentum m moves lr / (1 - m) per unit of steady gradient."""
    lr, momentum = s.get(N.OPTIM_LR), s.get(N.OPTIM_MOMENTUM, 0.0) or 0.0
    if lr is None or s.get(N.OPTIM_CLASS) != "SGD" or not 0 <= momentum < 1:
        return lr
    return float(lr / (1 - momentum))


def explained_elsewhere(s: Signals, t: Thresholds, v: Verdicts) -> bool:
    """The LR is a usual one for its optimizer and another cause's fix made the setup learn at this very LR: the
    LR is not what is wrong."""
    low, high = typical(s, t)
    lr = effective_lr(s)
    return lr is not None and low <= lr <= high and fixed_without(v, "lr.") is not None


def _decades(a: float, b: float) -> float:
    return math.log10(a / b) if a > 0 and b > 0 else 0.0


def _held_out_explosion(s: Signals, t: Thresholds) -> bool:
    """The held-out loss ended far above where it started while the model trained: overconfident, wildly wrong
    outputs, the mark of steps that overshoot even when the training loss falls."""
    after, before = s.get(N.TRIAL_HELD_OUT_LOSS), s.get(N.LOSS_INIT)
    return after is not None and before is not None and before > 0 and after > t.max_init_loss_ratio * before


@rule("lr.too_high")
def too_high(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Steps far larger than the weights overshoot: the loss rises or goes non-finite, the held-out loss explodes
    and ReLU units are pushed dead for every input; each step then moves the weights by a large share of their norm,
    and the range test finds the loss falling fastest at a much lower LR."""
    lr = s.get(N.OPTIM_LR)
    ratio = s.get(N.UPDATE_RATIO_MEDIAN)
    jump = _dead_jump(s)
    suggestion = s.get(N.LR_RANGE_SUGGESTION)
    runaway = ratio is not None and ratio > t.max_trial_update_ratio
    killed = jump is not None and jump[1] >= t.trial_dead_rise
    far = suggestion is not None and bool(lr) and _decades(lr, suggestion) >= t.lr_decades
    effective = effective_lr(s)
    unusual = effective is not None and effective > 3 * typical(s, t)[1]
    exploded = _held_out_explosion(s, t)
    check = v.get("lr.too_high")
    if not stuck(v) or explained_elsewhere(s, t, v):
        return None
    if not (runaway or killed or far or diverged(v) or exploded) and not (check and check.passed):
        return None
    prior = INFERRED + RUNAWAY * runaway + KILLED * killed + FAR * far + UNUSUAL * unusual + EXPLODED * exploded
    evidence = [Evidence("update/weight ratio per step (median over layers)", ratio, "~1e-3")]
    first, last = s.get(N.TRIAL_LOSS_FIRST), s.get(N.TRIAL_LOSS_LAST)
    signs = ["the loss went non-finite" if s.get(N.TRIAL_DIVERGED) else f"the loss went {fmt(first)} -> {fmt(last)}"]
    if runaway:
        signs.append(f"each step changed the weights by {fmt(ratio)} of their norm (healthy ~1e-3)")
    if exploded:
        held = s.get(N.TRIAL_HELD_OUT_LOSS)
        signs.append(f"the held-out loss rose to {fmt(held)} from {fmt(s.get(N.LOSS_INIT))}")
        evidence.append(
            Evidence(
                "held-out loss after the trial / at init", held / s.get(N.LOSS_INIT), f"< {t.max_init_loss_ratio:g}"
            )
        )
    if killed and jump is not None:
        evidence.append(Evidence("rise in dead units during the trial", jump[1], "~0", jump[0]))
        signs.append(f"{jump[1]:.0%} more units feeding {jump[0]} died")
    if suggestion is not None:
        evidence.append(Evidence("LR range test suggestion", suggestion, f"near lr={fmt(lr)}"))
    return Claim(
        confirm(min(prior, MAX_HIGH_PRIOR), check),
        f"lr={fmt(lr)} overshoots: in {s.get(N.TRIAL_STEPS, 0)} steps " + ", ".join(signs) + ".",
        evidence + symptom_evidence(v, t),
        "Lower the learning rate (torchmedic.find_lr measures it on your model), and add warmup or gradient "
        "clipping if it must stay high." + LONG_RUN,
        verification=check,
    )


@rule("lr.too_low")
def too_low(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Steps far smaller than the weights cannot leave the initial, near-constant solution within a realistic run:
    the training loss falls so slowly that learning would take thousands of steps, each step moves the weights by
    a tiny share of their norm, and the range test finds the loss falling fastest at a much higher LR."""
    baseline = v.trial
    needed = steps_to_learn(baseline, t) if baseline is not None else math.inf
    if not stuck(v) or needed <= t.realistic_steps or explained_elsewhere(s, t, v):
        return None
    lr = s.get(N.OPTIM_LR)
    ratio = s.get(N.UPDATE_RATIO_MEDIAN)
    suggestion = s.get(N.LR_RANGE_SUGGESTION)
    tiny = ratio is not None and 0 < ratio < t.min_trial_update_ratio
    far = suggestion is not None and bool(lr) and _decades(suggestion, lr) >= t.lr_decades
    effective = effective_lr(s)
    unusual = effective is not None and effective < 3 * typical(s, t)[0]
    check = v.get("lr.too_low")
    if not (tiny or far or unusual):
        return None
    prior = INFERRED + TINY_STEPS * tiny + FAR_UP * far + UNUSUAL_LOW * unusual
    evidence = [
        Evidence("update/weight ratio per step (median over layers)", ratio, f"~1e-3 (>= {t.min_trial_update_ratio})"),
        Evidence("steps to learn at the trial's rate of loss decrease", needed, f"<= {t.realistic_steps}"),
    ]
    if suggestion is not None:
        evidence.append(Evidence("LR range test suggestion", suggestion, f"near lr={fmt(lr)}"))
    found = f"; the LR range test finds the loss falling fastest near {fmt(suggestion)}" if far else ""
    return Claim(
        confirm(prior, check),
        f"lr={fmt(lr)} is too small to leave the initial solution: each step changes the weights by {fmt(ratio)} of "
        f"their norm (healthy ~1e-3){found}.",
        evidence + symptom_evidence(v, t),
        "Raise the learning rate (torchmedic.find_lr measures it on your model)." + LONG_RUN,
        verification=check,
    )
