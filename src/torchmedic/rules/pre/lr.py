"""Rules for the learning rate: steps that overshoot, and steps too small to leave the start."""

from __future__ import annotations

import math

from torchmedic.config import DiagnoseConfig
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.rules.pre.common import (
    confirm,
    diverged,
    fixed_without,
    fmt,
    steps_to_learn,
    stuck,
    symptom_evidence,
    verification,
)
from torchmedic.rules.registry import rule
from torchmedic.signals import Signals

_LONG_RUN = (
    " Over thousands of steps, a third of the LR that trains fastest in a short run is safer: repair() keeps a third"
    " of the range test's suggestion."
)


def _dead_jump(s: Signals) -> tuple[str, float] | None:
    """The layer whose share of dead input units rose the most during the trial."""
    before, after = s.scoped("act.in_dead"), s.scoped("act.dead_after")
    jumps = {k: after[k] - before.get(k, 0.0) for k in after}
    if not jumps:
        return None
    layer = max(jumps, key=jumps.__getitem__)
    return layer, jumps[layer]


def _optimizer_line(s: Signals, lr: float) -> str:
    name = s.get("optim.class", "Adam")
    momentum = s.get("optim.momentum", 0.0)
    extra = f", momentum={momentum:g}" if momentum else ""
    return f"optimizer = torch.optim.{name}(model.parameters(), lr={lr:.1e}{extra})"


def typical(s: Signals, c: DiagnoseConfig) -> tuple[float, float]:
    """The LR range people use with this optimizer class (for SGD: of the effective LR, momentum included)."""
    return c.typical_sgd_lr if s.get("optim.class") == "SGD" else c.typical_adaptive_lr


def effective_lr(s: Signals) -> float | None:
    """The step size that matters: SGD with momentum m moves lr / (1 - m) per unit of steady gradient."""
    lr, momentum = s.get("optim.lr"), s.get("optim.momentum", 0.0) or 0.0
    if lr is None or s.get("optim.class") != "SGD" or not 0 <= momentum < 1:
        return lr
    return float(lr / (1 - momentum))


def explained_elsewhere(s: Signals, c: DiagnoseConfig) -> bool:
    """The LR is a usual one for its optimizer and another cause's fix made the setup learn at this very LR: the
    LR is not what is wrong."""
    low, high = typical(s, c)
    lr = effective_lr(s)
    return lr is not None and low <= lr <= high and fixed_without(s, c, "lr.") is not None


def _decades(a: float, b: float) -> float:
    return math.log10(a / b) if a > 0 and b > 0 else 0.0


@rule("lr.too_high")
def too_high(s: Signals, c: DiagnoseConfig) -> Finding | None:
    lr = s.get("optim.lr")
    ratio = s.get("update.ratio_median")
    jump = _dead_jump(s)
    suggestion = s.get("lr_range.suggestion")
    runaway = ratio is not None and ratio > c.max_update_ratio
    killed = jump is not None and jump[1] >= 0.5
    far = suggestion is not None and lr and _decades(lr, suggestion) >= c.lr_decades
    effective = effective_lr(s)
    unusual = effective is not None and effective > 3 * typical(s, c)[1]
    exploded = _held_out_explosion(s, c)
    check = verification(s, "lr.too_high", c)
    if not (stuck(s, c) or diverged(s)) or explained_elsewhere(s, c):
        return None
    if not (runaway or killed or far or diverged(s) or exploded) and not (check and check.passed):
        return None
    prior = 0.35 + 0.2 * runaway + 0.15 * killed + 0.15 * bool(far) + 0.1 * unusual + 0.1 * exploded
    evidence = [Evidence("update/weight ratio per step (median over layers)", ratio, "~1e-3")]
    first, last = s.get("trial.loss_first"), s.get("trial.loss_last")
    signs = ["the loss went non-finite" if s.get("trial.diverged") else f"the loss went {fmt(first)} -> {fmt(last)}"]
    if runaway:
        signs.append(f"each step changed the weights by {fmt(ratio)} of their norm (healthy ~1e-3)")
    if exploded:
        held = s.get("trial.held_out_loss")
        signs.append(f"the held-out loss rose to {fmt(held)} from {fmt(s.get('loss.init'))}")
        evidence.append(
            Evidence(
                "held-out loss after the trial / at init", held / s.get("loss.init"), f"< {c.max_init_loss_ratio:g}"
            )
        )
    if killed and jump is not None:
        evidence.append(Evidence("rise in dead units during the trial", jump[1], "~0", jump[0]))
        signs.append(f"{jump[1]:.0%} more units feeding {jump[0]} died")
    if suggestion is not None:
        evidence.append(Evidence("LR range test suggestion", suggestion, f"near lr={fmt(lr)}"))
    target = _target(s, c, "lr.too_high", suggestion if suggestion and far else (lr or 1e-3) / 10)
    return Finding(
        "lr.too_high",
        confirm(min(prior, 0.8), check),
        f"lr={fmt(lr)} overshoots: in {s.get('trial.steps', 0)} steps " + ", ".join(signs) + ".",
        evidence + symptom_evidence(s, c),
        Fix(
            f"Lower the learning rate to about {fmt(target)} (torchmedic.find_lr measures it on your model), and "
            "add warmup or gradient clipping if it must stay high." + _LONG_RUN,
            _optimizer_line(s, target),
        ),
        check,
    )


def _held_out_explosion(s: Signals, c: DiagnoseConfig) -> bool:
    """The held-out loss ended far above where it started while the model trained: overconfident, wildly wrong
    outputs, the mark of steps that overshoot even when the training loss falls."""
    after, before = s.get("trial.held_out_loss"), s.get("loss.init")
    return after is not None and before is not None and before > 0 and after > c.max_init_loss_ratio * before


def _target(s: Signals, c: DiagnoseConfig, cause: str, fallback: float) -> float:
    """The LR to recommend: the one whose trial removed the symptom, else `fallback`."""
    check = verification(s, cause, c)
    verified = s.get(f"verify.{cause}.lr")
    return float(verified) if check is not None and check.passed and verified else fallback


@rule("lr.too_low")
def too_low(s: Signals, c: DiagnoseConfig) -> Finding | None:
    needed = steps_to_learn(s, c, "trial")
    if not stuck(s, c) or needed <= c.realistic_steps or explained_elsewhere(s, c):
        return None
    lr = s.get("optim.lr")
    ratio = s.get("update.ratio_median")
    suggestion = s.get("lr_range.suggestion")
    tiny = ratio is not None and 0 < ratio < c.min_update_ratio
    far = suggestion is not None and lr and _decades(suggestion, lr) >= c.lr_decades
    effective = effective_lr(s)
    unusual = effective is not None and effective < 3 * typical(s, c)[0]
    check = verification(s, "lr.too_low", c)
    if not (tiny or far or unusual):
        return None
    prior = 0.35 + 0.2 * tiny + 0.2 * bool(far) + 0.1 * unusual
    target = _target(s, c, "lr.too_low", suggestion if suggestion and far else (lr or 1e-3) * 100)
    evidence = [
        Evidence("update/weight ratio per step (median over layers)", ratio, f"~1e-3 (>= {c.min_update_ratio:g})"),
        Evidence("steps to learn at the trial's rate of loss decrease", needed, f"<= {c.realistic_steps}"),
    ]
    if suggestion is not None:
        evidence.append(Evidence("LR range test suggestion", suggestion, f"near lr={fmt(lr)}"))
    found = f"; the LR range test finds the loss falling fastest near {fmt(suggestion)}" if far else ""
    return Finding(
        "lr.too_low",
        confirm(prior, check),
        f"lr={fmt(lr)} is too small to leave the initial solution: each step changes the weights by {fmt(ratio)} of "
        f"their norm (healthy ~1e-3){found}.",
        evidence + symptom_evidence(s, c),
        Fix(
            f"Raise the learning rate to about {fmt(target)} (torchmedic.find_lr measures it on your model)."
            + _LONG_RUN,
            _optimizer_line(s, target),
        ),
        check,
    )
