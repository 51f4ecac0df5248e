"""What the pre-flight rules share: the symptom, the verdict of an intervention, and how confidence moves."""

from __future__ import annotations

import math

from torchmedic.causes import CAUSES
from torchmedic.config import DiagnoseConfig
from torchmedic.finding import FADING, GONE, STAYS, Evidence, Verification, format_value
from torchmedic.signals import Signals


def class_like(s: Signals, c: DiagnoseConfig) -> bool:
    """Targets that look like class indices: a handful of non-negative integers."""
    present = s.get("target.classes_present", 0)
    return s.get("target.histogram") is not None and 2 <= present <= c.max_class_like


def rows_reshaped(s: Signals) -> tuple[int, int] | None:
    """(output rows, samples) when a batch of N samples comes out as a whole multiple or fraction of N rows: the
    batch dimension was reshaped away. Other row counts (time-major sequences) are left alone."""
    rows, samples = s.get("batch.output_rows"), s.get("batch.input_rows")
    if not rows or not samples or rows == samples:
        return None
    return (rows, samples) if rows % samples == 0 or samples % rows == 0 else None


def held_out_gain(s: Signals) -> float | None:
    return s.get("trial.held_out_gain")


def stuck(s: Signals, c: DiagnoseConfig) -> bool:
    """The symptom: after the baseline trial the model is no better than a constant output on held-out data."""
    gain = held_out_gain(s)
    return gain is not None and (not math.isfinite(gain) or gain < c.min_gain)


def learned(s: Signals, c: DiagnoseConfig) -> bool:
    gain = held_out_gain(s)
    return gain is not None and math.isfinite(gain) and gain >= c.min_gain


def collapsed(s: Signals, c: DiagnoseConfig) -> bool:
    """After the trial (nearly) every held-out sample gets the same class although the labels differ."""
    top = s.get("trial.top_fraction")
    classes = s.get("dataset.classes_present", s.get("target.classes_present", 0))
    return top is not None and top >= c.collapse_share and classes >= 2


def diverged(s: Signals) -> bool:
    """The loss went non-finite or ended far above where it started."""
    if s.get("trial.diverged"):
        return True
    first, last = s.get("trial.loss_first"), s.get("trial.loss_last")
    return first is not None and last is not None and math.isfinite(first) and last > 1.5 * first + 1e-3


def symptom_evidence(s: Signals, c: DiagnoseConfig) -> list[Evidence]:
    """The symptom as evidence: the gain over a constant output after the trial, and collapse when present."""
    items = []
    gain = held_out_gain(s)
    if gain is not None:
        steps = s.get("trial.steps", 0)
        items.append(Evidence(f"held-out gain over a constant output after {steps} steps", gain, f">= {c.min_gain:g}"))
    top = s.get("trial.top_fraction")
    if top is not None and top >= c.collapse_share:
        items.append(Evidence("share of held-out predictions on one class", top, f"< {c.collapse_share:g}"))
    return items


def steps_to_learn(s: Signals, c: DiagnoseConfig, prefix: str) -> float:
    """Steps the training loss of trial `prefix` needs, at the rate it fell, to beat the constant output by
    min_gain: a linear extrapolation (optimistic, as loss curves flatten); inf when it did not fall."""
    rate, last, floor = s.get(f"{prefix}.loss_rate"), s.get(f"{prefix}.loss_last"), s.get(f"{prefix}.floor")
    if rate is None or last is None or floor is None or not math.isfinite(last):
        return math.inf
    remaining = last - floor * (1 - c.min_gain)
    if remaining <= 0:
        return 0.0
    return remaining / rate if rate > 0 else math.inf


def verification(s: Signals, cause: str, c: DiagnoseConfig) -> Verification | None:
    """The verdict of the intervention run for `cause`. The symptom is gone when the fix makes the model beat the
    constant output on held-out data, stops a divergence, or makes the loss fall fast enough to learn within
    `realistic_steps` where it did not before."""
    return verdict_at(s, f"verify.{cause}", c)


RANK = {STAYS: 0, FADING: 1, GONE: 2}


def verdict_at(s: Signals, prefix: str, c: DiagnoseConfig) -> Verification | None:
    """The verdict of the intervention trial recorded under `prefix`."""
    if not s.has(f"{prefix}.held_out_gain"):
        return None
    label = s.get(f"{prefix}.label", "intervention")
    if s.get(f"{prefix}.joint"):
        label = f"{label} ({s.get(f'{prefix}.joint')})"
    metric = s.get(f"{prefix}.metric", "held_out_gain")
    before = s.get(f"{prefix}.baseline", s.get("trial.held_out_gain", 0.0))
    after = s.get(f"{prefix}.{metric}")
    if metric != "held_out_gain":  # balanced accuracy: higher is better, must move by the margin
        passed = _finite(after) and _finite(before) and after - before >= c.verify_margin
        return Verification(label, metric.replace("_", " "), float(before), float(after), GONE if passed else STAYS)
    learns = _finite(after) and after >= c.min_gain and (not _finite(before) or after - before >= c.verify_margin)
    calmed = not _finite(before) and _finite(after) and not s.get(f"{prefix}.diverged")
    if learns or calmed:
        return Verification(label, "held-out gain", float(before), float(after), GONE)
    reference = s.get(f"{prefix}.reference", "trial")
    bal_before, bal_after = s.get(f"{reference}.balanced_accuracy"), s.get(f"{prefix}.balanced_accuracy")
    chance = s.get(f"{prefix}.chance")
    if (  # predictions that follow the input appeared: argmax learns before the loss falls much
        bal_before is not None
        and bal_after is not None
        and chance is not None
        and bal_after >= chance + c.verify_margin
        and bal_after - bal_before >= c.verify_margin
    ):
        return Verification(label, "held-out balanced accuracy", bal_before, bal_after, GONE)
    slow, fixed = steps_to_learn(s, c, reference), steps_to_learn(s, c, prefix)
    beyond_prior = _finite(after) and after > c.prior_margin  # past what fitting the label prior can reach
    if slow > c.realistic_steps >= fixed and (not _finite(before) or after >= before):
        verdict = GONE if beyond_prior else FADING  # a falling loss may still be the label prior being fitted
        return Verification(label, "steps to learn at the trial's rate", slow, fixed, verdict)
    return Verification(label, "held-out gain", float(before), float(after), STAYS)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def fixed_without(s: Signals, c: DiagnoseConfig, prefix: str) -> str | None:
    """A verified fix for another cause (one whose code does not start with `prefix`) that removed the symptom
    on its own: then this cause is not needed to explain it. Returns that cause's code."""
    for cause in CAUSES:
        partners = s.get(f"verify.{cause}.partners") or []
        if cause.startswith(prefix) or any(p.startswith(prefix) for p in partners):
            continue  # only a fix that worked without this cause's own fix explains the symptom away
        check = verification(s, cause, c)
        if check is not None and check.passed:
            return cause
    return None


def learns_once_fixed(s: Signals, c: DiagnoseConfig) -> str | None:
    """A cause whose fix made the model generalize (held-out gain >= min_gain): proof that the labels do carry
    a learnable signal."""
    for cause in CAUSES:
        gain = s.get(f"verify.{cause}.held_out_gain")
        if gain is not None and _finite(gain) and gain >= c.min_gain:
            return cause
    return None


def confirm(prior: float, check: Verification | None, *, structural: bool = False) -> float:
    """Confidence after the intervention: a fix that removes the symptom makes the cause much more likely. One
    that does not halves a cause inferred from the symptom, but barely touches a defect seen in the structure
    itself (a softmax before CrossEntropyLoss stays wrong when another fault hides its effect)."""
    if check is None:
        return prior
    if check.passed:
        return 1 - (1 - prior) * 0.3
    if check.verdict == FADING:
        return prior * 0.95
    return prior * (0.85 if structural else 0.5)


def fmt(value: float) -> str:
    return format_value(value)


def module_ref(scope: str) -> str:
    """How the user's code refers to a module: `model.fc`, `model.features[3]`."""
    if not scope:
        return "model"
    parts = []
    for part in scope.split("."):
        parts.append(f"[{part}]" if part.isdigit() else f".{part}")
    return "model" + "".join(parts)
