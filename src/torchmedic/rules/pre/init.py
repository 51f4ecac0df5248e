"""Rules for weight initialization: NaN or Inf, too small, too large, symmetric, dead from the start."""

from __future__ import annotations

import statistics

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.lines import module_ref
from torchmedic.rules.pre.common import MECHANISM, SEEN, STRUCTURAL, confirm, fmt, stuck, symptom_evidence
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

ALL_DEAD = 0.9  # every unit feeding a layer is zero for every sample: nothing passes
MOSTLY_DEAD = 0.65  # nine in ten dead: most of the signal is lost ...
MOSTLY_DEAD_STUCK = 0.1  # ... and more likely the cause when the model does not learn
DEAD_BY_SYMMETRY = 0.5  # identical units are dead together: the symmetry is the cause, the dead units its effect
DEAD_BY_DROPOUT = 0.4  # a dropout that keeps almost nothing zeroes the units after it: the dropout is the cause
NEGATIVE_BIAS = -0.5  # a mean bias this negative keeps a ReLU off for standardized inputs: the likely culprit


def _gains(s: Signals) -> dict[str, float]:
    return {k: g for k, g in s.scoped(N.WEIGHT_GAIN).items() if g == g}


@rule("init.nonfinite")
def nonfinite(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """A NaN or Inf in a weight or buffer reaches every output computed through it: each prediction, the loss and
    every gradient are NaN from the first batch, and no step can repair a value it multiplies by NaN."""
    bad = s.scoped(N.WEIGHT_NONFINITE)
    if not bad:
        return None
    check = v.get("init.nonfinite")
    names = sorted(bad, key=lambda n: -bad[n])
    return Claim(
        confirm(SEEN, check, structural=True),
        f"{sum(bad.values())} NaN/Inf values in the model before training ({', '.join(names[:3])}"
        f"{', ...' if len(names) > 3 else ''}): every output computed through them is NaN, and so are the loss and "
        "every gradient.",
        [Evidence("non-finite values", bad[n], "0", n) for n in names[:3]] + symptom_evidence(v, t),
        "Re-initialize the layers that hold them, or load a checkpoint saved before training diverged; then find "
        "what wrote them (a division by zero or a log of 0 in a custom init).",
        verification=check,
    )


@rule("init.too_small")
def too_small(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Weights too small for the depth shrink the signal layer by layer: the output is nearly the bias for every
    input and early layers get almost no gradient."""
    gains = _gains(s)
    ratio = s.get(N.ACT_STD_RATIO)
    if not gains or ratio is None:
        return None
    median = statistics.median(gains.values())
    if median >= t.min_weight_gain or ratio >= t.max_init_std_decay:
        return None
    check = v.get("init.too_small")
    if not stuck(v) and not (check and check.passed):
        return None
    smallest = min(gains, key=gains.__getitem__)
    return Claim(
        confirm(MECHANISM, check),
        f"weights are too small for the depth: median std(W)*sqrt(fan_in) is {fmt(median)} (PyTorch's default "
        f"gives 0.58, Kaiming 1.41) and the activation std falls "
        f"{f'{fmt(1 / ratio)}x' if ratio > 0 else 'to exactly 0'} from the first to the last layer, so the output is "
        "nearly the bias and early layers get almost no gradient.",
        [
            Evidence("median weight gain std(W)*sqrt(fan_in)", median, f">= {t.min_weight_gain:g} (default 0.58)"),
            Evidence("smallest weight gain", gains[smallest], f">= {t.min_weight_gain:g}", smallest),
            Evidence("activation std, last layer / first layer", ratio, f">= {t.max_init_std_decay:g}"),
            *symptom_evidence(v, t),
        ],
        "Initialize with the scheme made for the nonlinearity (Kaiming for ReLU conv layers, Xavier for linear "
        "layers), not with a tiny constant std.",
        verification=check,
    )


@rule("init.too_large")
def too_large(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Weights too large grow the activations layer by layer until tanh/sigmoid units saturate and logits are
    huge: the loss at init is far above ln C and gradients through saturated units vanish."""
    gains = _gains(s)
    if not gains:
        return None
    median = statistics.median(gains.values())
    saturated = {k: share for k, share in s.scoped(N.ACT_SATURATED).items() if share >= t.saturation}
    rms = s.get(N.INPUT_FIRST_LAYER_RMS)
    if rms is not None and rms > t.max_input_scale:
        saturated = {}  # inputs far above unit scale saturate units through any weights: data.unnormalized
    if median <= t.max_weight_gain and not saturated:
        return None
    check = v.get("init.too_large")
    init, ln_c = s.get(N.LOSS_INIT), s.get(N.LOSS_LN_C)
    high_loss = init is not None and ln_c and init > t.max_init_loss_ratio * ln_c
    if not (stuck(v) or high_loss) and not (check and check.passed):
        return None
    largest = max(gains, key=gains.__getitem__)
    evidence = [
        Evidence("median weight gain std(W)*sqrt(fan_in)", median, f"<= {t.max_weight_gain:g} (Kaiming 1.41)"),
        Evidence("largest weight gain", gains[largest], f"<= {t.max_weight_gain:g}", largest),
    ]
    if init is not None and ln_c:
        evidence.append(Evidence("loss at init / ln C", init / ln_c, f"~1 (<= {t.max_init_loss_ratio:g})"))
    for name, share in saturated.items():
        evidence.append(Evidence("share of saturated tanh/sigmoid outputs", share, f"< {t.saturation:g}", name))
    if median > t.max_weight_gain:
        summary = (f"weights are too large: median std(W)*sqrt(fan_in) is {fmt(median)} (Kaiming gives 1.41), so "
                   f"activations grow layer by layer{' and saturate' if saturated else ''}")  # fmt: skip
    else:
        layer, share = max(saturated.items(), key=lambda kv: kv[1])
        summary = (f"{share:.0%} of the tanh/sigmoid outputs of {layer or 'a layer'} saturate at init on inputs of "
                   f"unit scale: the weights feeding them are too large for a saturating nonlinearity (median "
                   f"std(W)*sqrt(fan_in) {fmt(median)})")  # fmt: skip
    return Claim(
        confirm(MECHANISM, check),
        summary + (f"; the loss at init is {fmt(init)} against ln C = {fmt(ln_c)}." if high_loss else "."),
        evidence + symptom_evidence(v, t),
        "Use the default or a Kaiming/Xavier initialization instead of a large constant std.",
        verification=check,
    )


def _identical_units(s: Signals) -> list[str]:
    """Hidden weight layers whose rows (units) are all the same."""
    head = s.get(N.MODEL_HEAD)
    distinct, rows = s.scoped(N.WEIGHT_DISTINCT_ROWS), s.scoped(N.WEIGHT_ROWS)
    return [name for name, n in distinct.items() if n == 1 and rows.get(name, 1) > 1 and name != head]


@rule("init.symmetric")
def symmetric(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Units of a layer that start with identical weights get identical gradients and stay identical: the layer
    acts like a single unit, however wide."""
    clones = _identical_units(s)
    rows = s.scoped(N.WEIGHT_ROWS)
    if not clones:
        return None
    check = v.get("init.symmetric")
    layer = clones[0]
    return Claim(
        confirm(STRUCTURAL, check, structural=True),
        f"every unit of {', '.join(clones[:3])} has the same weights ({rows[layer]} identical rows in {layer}): "
        "identical units get identical gradients and stay identical, so each layer acts like a single unit.",
        [Evidence("distinct weight rows", 1, f"{rows[layer]} (one per unit)", n) for n in clones[:3]]
        + symptom_evidence(v, t),
        f"Initialize {module_ref(layer)} randomly (zeros or a constant never break the symmetry).",
        verification=check,
    )


@rule("init.dead_units")
def dead_units(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """A ReLU unit whose input is negative for every sample (a large negative bias) outputs 0 and passes no
    gradient: it never recovers, and the output stops depending on the input."""
    dead = {k: share for k, share in s.scoped(N.ACT_IN_DEAD).items() if share >= t.dead_fraction}
    if not dead:
        return None
    check = v.get("init.dead_units")
    layer = max(dead, key=dead.__getitem__)
    prior = 0.9 if dead[layer] >= 0.999 else 0.65 + 0.1 * stuck(v)
    if _identical_units(s):
        prior = DEAD_BY_SYMMETRY
    if any(p >= t.max_dropout for p in (s.get(N.MODEL_DROPOUT) or {}).values()):
        prior = min(prior, DEAD_BY_DROPOUT)
    biases = s.scoped(N.BIAS_MEAN)
    negative = {k: b for k, b in biases.items() if b < NEGATIVE_BIAS}
    evidence = [
        Evidence("share of input units that are zero for every sample", share, f"< {t.dead_fraction:g}", k)
        for k, share in dead.items()
    ]
    evidence += [Evidence("mean bias", b, "~0", k) for k, b in list(negative.items())[:3]]
    culprit = next(iter(negative), "")
    return Claim(
        confirm(prior, check),
        f"{dead[layer]:.0%} of the units feeding {layer} are zero for every sample at init"
        f"{f' (mean bias of {culprit} is {fmt(negative[culprit])})' if culprit else ''}: a dead ReLU passes no "
        "gradient, so these units never recover and the output hardly depends on the input.",
        evidence + symptom_evidence(v, t),
        "Initialize biases at zero (or slightly positive) and weights with Kaiming; consider LeakyReLU.",
        verification=check,
    )
