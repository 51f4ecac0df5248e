"""Rules for weight initialization: too small, too large, symmetric, dead from the start."""

from __future__ import annotations

import statistics

from torchmedic.config import DiagnoseConfig
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.rules.pre.common import confirm, diverged, fmt, module_ref, stuck, symptom_evidence, verification
from torchmedic.rules.registry import rule
from torchmedic.signals import Signals

REINIT = (
    "for m in model.modules():\n"
    "    if isinstance(m, nn.Conv2d):\n"
    "        nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')\n"
    "    elif isinstance(m, nn.Linear):\n"
    "        nn.init.xavier_uniform_(m.weight)\n"
    "    if getattr(m, 'bias', None) is not None:\n"
    "        nn.init.zeros_(m.bias)\n"
    "# or: torchmedic.init_weights(model, 'kaiming')"
)


def _gains(s: Signals) -> dict[str, float]:
    return {k: v for k, v in s.scoped("weight.gain").items() if v == v}


@rule("init.too_small")
def too_small(s: Signals, c: DiagnoseConfig) -> Finding | None:
    gains = _gains(s)
    ratio = s.get("act.std_ratio")
    if not gains or ratio is None:
        return None
    median = statistics.median(gains.values())
    if median >= c.min_weight_gain or ratio >= c.max_std_decay:
        return None
    check = verification(s, "init.too_small", c)
    if not stuck(s, c) and not (check and check.passed):
        return None
    smallest = min(gains, key=gains.__getitem__)
    return Finding(
        "init.too_small",
        confirm(0.55, check),
        f"weights are too small for the depth: median std(W)*sqrt(fan_in) is {fmt(median)} (PyTorch's default "
        f"gives 0.58, Kaiming 1.41) and the activation std falls "
        f"{f'{fmt(1 / ratio)}x' if ratio > 0 else 'to exactly 0'} from the first to the last layer, so the output is "
        "nearly the bias and early layers get almost no gradient.",
        [
            Evidence("median weight gain std(W)*sqrt(fan_in)", median, f">= {c.min_weight_gain:g} (default 0.58)"),
            Evidence("smallest weight gain", gains[smallest], f">= {c.min_weight_gain:g}", smallest),
            Evidence("activation std, last layer / first layer", ratio, f">= {c.max_std_decay:g}"),
            *symptom_evidence(s, c),
        ],
        Fix(
            "Initialize with the scheme made for the nonlinearity (Kaiming for ReLU conv layers, Xavier for linear "
            "layers), not with a tiny constant std.",
            REINIT,
        ),
        check,
    )


@rule("init.too_large")
def too_large(s: Signals, c: DiagnoseConfig) -> Finding | None:
    gains = _gains(s)
    if not gains:
        return None
    median = statistics.median(gains.values())
    saturated = {k: v for k, v in s.scoped("act.saturated").items() if v >= c.saturation}
    if median <= c.max_weight_gain and not saturated:
        return None
    check = verification(s, "init.too_large", c)
    init, ln_c = s.get("loss.init"), s.get("loss.ln_c")
    high_loss = init is not None and ln_c and init > c.max_init_loss_ratio * ln_c
    if not (stuck(s, c) or diverged(s) or high_loss) and not (check and check.passed):
        return None
    largest = max(gains, key=gains.__getitem__)
    evidence = [
        Evidence("median weight gain std(W)*sqrt(fan_in)", median, f"<= {c.max_weight_gain:g} (Kaiming 1.41)"),
        Evidence("largest weight gain", gains[largest], f"<= {c.max_weight_gain:g}", largest),
    ]
    if init is not None and ln_c:
        evidence.append(Evidence("loss at init / ln C", init / ln_c, f"~1 (<= {c.max_init_loss_ratio:g})"))
    for name, share in saturated.items():
        evidence.append(Evidence("share of saturated tanh/sigmoid outputs", share, f"< {c.saturation:g}", name))
    return Finding(
        "init.too_large",
        confirm(0.55, check),
        f"weights are too large: median std(W)*sqrt(fan_in) is {fmt(median)} (Kaiming gives 1.41), so activations "
        f"grow layer by layer{' and saturate' if saturated else ''}"
        f"{f'; the loss at init is {fmt(init)} against ln C = {fmt(ln_c)}' if high_loss else ''}.",
        evidence + symptom_evidence(s, c),
        Fix("Use the default or a Kaiming/Xavier initialization instead of a large constant std.", REINIT),
        check,
    )


def _identical_units(s: Signals) -> list[str]:
    """Hidden weight layers whose rows (units) are all the same."""
    head = s.get("model.head")
    distinct, rows = s.scoped("weight.distinct_rows"), s.scoped("weight.rows")
    return [name for name, n in distinct.items() if n == 1 and rows.get(name, 1) > 1 and name != head]


@rule("init.symmetric")
def symmetric(s: Signals, c: DiagnoseConfig) -> Finding | None:
    clones = _identical_units(s)
    rows = s.scoped("weight.rows")
    if not clones:
        return None
    check = verification(s, "init.symmetric", c)
    layer = clones[0]
    return Finding(
        "init.symmetric",
        confirm(0.85, check, structural=True),
        f"every unit of {', '.join(clones[:3])} has the same weights ({rows[layer]} identical rows in {layer}): "
        "identical units get identical gradients and stay identical, so each layer acts like a single unit.",
        [Evidence("distinct weight rows", 1, f"{rows[layer]} (one per unit)", n) for n in clones[:3]]
        + symptom_evidence(s, c),
        Fix(
            f"Initialize {module_ref(layer)} randomly (zeros or a constant never break the symmetry).",
            f"nn.init.kaiming_normal_({module_ref(layer)}.weight, nonlinearity='relu')\n"
            f"nn.init.zeros_({module_ref(layer)}.bias)",
        ),
        check,
    )


@rule("init.dead_units")
def dead_units(s: Signals, c: DiagnoseConfig) -> Finding | None:
    dead = {k: v for k, v in s.scoped("act.in_dead").items() if v >= c.dead_fraction}
    if not dead:
        return None
    check = verification(s, "init.dead_units", c)
    layer = max(dead, key=dead.__getitem__)
    prior = 0.9 if dead[layer] >= 0.999 else 0.65 + 0.1 * stuck(s, c)
    if _identical_units(s):
        prior = 0.5  # zero or constant weights make the units identical, and dead with them: symmetry comes first
    biases = s.scoped("bias.mean")
    negative = {k: v for k, v in biases.items() if v < -0.5}
    evidence = [
        Evidence("share of input units that are zero for every sample", v, f"< {c.dead_fraction:g}", k)
        for k, v in dead.items()
    ]
    evidence += [Evidence("mean bias", v, "~0", k) for k, v in list(negative.items())[:3]]
    culprit = next(iter(negative), "")
    return Finding(
        "init.dead_units",
        confirm(prior, check),
        f"{dead[layer]:.0%} of the units feeding {layer} are zero for every sample at init"
        f"{f' (mean bias of {culprit} is {fmt(negative[culprit])})' if culprit else ''}: a dead ReLU passes no "
        "gradient, so these units never recover and the output hardly depends on the input.",
        evidence + symptom_evidence(s, c),
        Fix(
            "Initialize biases at zero (or slightly positive) and weights with Kaiming; consider LeakyReLU.",
            (f"nn.init.zeros_({module_ref(culprit)}.bias)\n" if culprit else "") + REINIT,
        ),
        check,
    )
