"""What the pre-flight rules share: the symptom, the verdicts of the fixes tried, and how confidence moves.

Confidence starts from a prior that says how directly the rule sees its mechanism (named below, each with its
reason), and moves with the verdict of the cause's own fix: a fix that removes the symptom makes the cause much
more likely, one that does not makes a cause inferred from the symptom much less likely.
"""

from __future__ import annotations

import math

from torchmedic import signal_names as N
from torchmedic.causes import CAUSES
from torchmedic.finding import FADING, Evidence, Verification, format_value
from torchmedic.signals import Signals
from torchmedic.symptom import COLLAPSED, DIVERGED
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

# --- priors: how likely a cause is before its fix was tried ---
SEEN = 0.97  # the defect is counted directly (NaN values, a frozen model, an optimizer holding other tensors)
STRUCTURAL = 0.85  # the defect is in the structure and its effect is known (identical rows, a broadcast loss)
MECHANISM = 0.6  # the mechanism is measured and the symptom is present, but another cause could produce both
INFERRED = 0.35  # only the symptom and a pattern that often goes with this cause
# --- how the verdict of the cause's own fix moves it ---
KEPT_DOUBT_VERIFIED = 0.3  # a fix that removed the symptom leaves 30% of the doubt
KEPT_FADING = 0.95  # a fix that moved the right way, too little to tell within the trial, barely changes it
KEPT_STAYED = 0.5  # a fix that did not help halves a cause inferred from the symptom ...
KEPT_STAYED_STRUCTURAL = 0.85  # ... but barely touches a defect seen in the structure (another fault may hide it)


def class_like(s: Signals, t: Thresholds) -> bool:
    """Targets that look like class indices: a handful of non-negative integers."""
    present = s.get(N.TARGET_CLASSES_PRESENT, 0)
    return s.get(N.TARGET_HISTOGRAM) is not None and 2 <= present <= t.max_class_like


def rows_reshaped(s: Signals) -> tuple[int, int] | None:
    """(output rows, samples) when a batch of N samples comes out as a whole multiple or fraction of N rows: the
    batch dimension was reshaped away. Other row counts (time-major sequences) are left alone."""
    rows, samples = s.get(N.BATCH_OUTPUT_ROWS), s.get(N.BATCH_INPUT_ROWS)
    if not rows or not samples or rows == samples:
        return None
    return (rows, samples) if rows % samples == 0 or samples % rows == 0 else None


def stuck(v: Verdicts) -> bool:
    """The symptom: after the baseline trial the model does not learn on held-out samples."""
    return v.stuck


def diverged(v: Verdicts) -> bool:
    """The loss went non-finite or ended far above where it started, and the predictions did not learn."""
    return v.symptom is not None and v.symptom.kind == DIVERGED


def collapsed(v: Verdicts) -> bool:
    """After the trial (nearly) every held-out prediction is the same class, more than the labels warrant."""
    return v.symptom is not None and v.symptom.kind == COLLAPSED


def symptom_evidence(v: Verdicts, t: Thresholds) -> list[Evidence]:
    """The symptom as evidence: the gain over a constant output and the skill after the trial, collapse when
    present."""
    symptom = v.symptom
    if symptom is None:
        return []
    after = f"after {symptom.steps} steps"
    items = [Evidence(f"held-out gain over a constant output {after}", symptom.gain, f">= {t.min_gain:g}")]
    if symptom.skill is not None:
        items.append(Evidence(f"held-out balanced accuracy, chance 0 .. perfect 1, {after}", symptom.skill,
                              f">= {t.min_skill:g}"))  # fmt: skip
    if symptom.kind == COLLAPSED and symptom.top_fraction is not None:
        items.append(Evidence("share of held-out predictions on one class", symptom.top_fraction,
                              f"< {t.collapse_share:g}"))  # fmt: skip
    return items


def fixed_without(v: Verdicts, prefix: str) -> str | None:
    """A verified fix for another cause (one whose code does not start with `prefix`) that removed the symptom
    on its own: then this cause is not needed to explain it. Returns that cause's code."""
    for cause, check in v.by_cause.items():
        if cause.startswith(prefix) or any(p.startswith(prefix) for p in check.partners):
            continue  # only a fix that worked without this cause's own fix explains the symptom away
        if check.passed:
            return cause
    return None


def learns_once_fixed(v: Verdicts) -> str | None:
    """A cause whose fix made the model learn on held-out samples: proof that the labels carry a signal."""
    return next((cause for cause in CAUSES if v.passed(cause)), None)


def confirm(prior: float, check: Verification | None, *, structural: bool = False) -> float:
    """Confidence after the intervention: a fix that removes the symptom makes the cause much more likely. One
    that does not halves a cause inferred from the symptom, but barely touches a defect seen in the structure
    itself (a softmax before CrossEntropyLoss stays wrong when another fault hides its effect)."""
    if check is None:
        return prior
    if check.passed:
        return 1 - (1 - prior) * KEPT_DOUBT_VERIFIED
    if check.verdict == FADING:
        return prior * KEPT_FADING
    return prior * (KEPT_STAYED_STRUCTURAL if structural else KEPT_STAYED)


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def fmt(value: float) -> str:
    return format_value(value)
