"""What the live rules share: reading the monitor's signals safely."""

from __future__ import annotations

import math
from typing import Any

from torchmedic import signal_names as N
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

# --- priors: how sure a live finding is, by how directly the run shows its mechanism (each confirmed on
# `MonitorConfig.confirm` consecutive sampled steps before it is reported) ---
SEEN_LIVE = 0.95  # read directly off the run: the mode flag, the optimizer's parameters, a load report, rows of 1.0
SPECIFIC = 0.9  # a pattern only this cause makes: the LR fell 1000x, every logit shifted by one constant
MECHANISM_LIVE = 0.85  # the mechanism measured (units dying after large updates, outputs pinned at a bound)
LIKELY = 0.8  # the pattern and the symptom, with one look-alike ruled out
SUGGESTIVE = 0.75  # the symptom and a pattern that usually goes with this cause
PLAUSIBLE = 0.7  # a pattern that often, not always, means this cause
POSSIBLE = 0.6  # the symptom alone, with nothing against this cause


def number(s: Signals, name: N.Name, scope: str = "") -> float | None:
    """A finite number, or None when the signal is missing or not a finite number."""
    value = s.get(name, scope=scope)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def early(s: Signals) -> bool:
    """Within the first sampled steps: where the run's own baseline (and init causes) are measured."""
    return bool(s.get(N.MONITOR_EARLY, False))


def nonfinite_at_start(s: Signals) -> dict[str, float]:
    """Parameters that held NaN or Inf before the first update the monitor saw, with how many such values."""
    return {k: float(v) for k, v in s.scoped(N.WEIGHT_NONFINITE).items() if finite(v) and v > 0}


def classification(s: Signals) -> bool:
    """Class-index targets, or 0/1 targets of a one-output binary task."""
    return s.get(N.TARGET_KIND) == "index" or s.get(N.TARGET_BINARY_FRACTION) == 1.0


def largest(values: dict[str, Any]) -> tuple[str, float] | None:
    """The scope with the largest finite value."""
    items = [(k, float(v)) for k, v in values.items() if finite(v)]
    return max(items, key=lambda kv: kv[1]) if items else None


def names(items: list[str], limit: int = 4) -> str:
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")


def input_scale(s: Signals) -> float | None:
    """max(|mean|, std) of the latest sampled input; None when not measured."""
    mean, std = number(s, N.INPUT_MEAN), number(s, N.INPUT_STD)
    return None if mean is None or std is None else max(abs(mean), std)


def inputs_unnormalized(s: Signals, t: Thresholds) -> bool:
    """Inputs far above unit scale: they explain huge activations, losses and steps on their own."""
    scale = input_scale(s)
    return scale is not None and scale >= t.max_input_scale


def label_entropy_ratio(s: Signals) -> float | None:
    """Label entropy per batch over what a batch of that size could hold of the run's labels (~1 when shuffled)."""
    total, batch = number(s, N.TARGET_ENTROPY_TOTAL), number(s, N.TARGET_BATCH_ENTROPY_RECENT)
    size, seen = number(s, N.TARGET_BATCH_SIZE), s.get(N.TARGET_HIST_TOTAL) or []
    if s.get(N.TARGET_KIND) != "index" or total is None or batch is None or not size or sum(v > 0 for v in seen) < 2:
        return None
    reference = min(total, math.log(size))  # a batch of N samples cannot hold more than ln N nats
    return batch / reference if reference > 0 else None


def batches_sorted(s: Signals, t: Thresholds) -> bool:
    ratio = label_entropy_ratio(s)
    return ratio is not None and ratio <= t.unshuffled_entropy_ratio
