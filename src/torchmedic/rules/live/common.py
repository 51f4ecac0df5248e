"""What the live rules share: reading the monitor's signals safely."""

from __future__ import annotations

import math
from typing import Any

from torchmedic.signals import Signals


def number(s: Signals, name: str, scope: str = "") -> float | None:
    """A finite number, or None when the signal is missing or not a finite number."""
    value = s.get(name, scope)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def early(s: Signals) -> bool:
    """Within the first sampled steps: where the run's own baseline (and init causes) are measured."""
    return bool(s.get("monitor.early", False))


def classification(s: Signals) -> bool:
    """Class-index targets, or 0/1 targets of a one-output binary task."""
    return s.get("target.kind") == "index" or s.get("target.binary_fraction") == 1.0


def largest(values: dict[str, Any]) -> tuple[str, float] | None:
    """The scope with the largest finite value."""
    items = [(k, float(v)) for k, v in values.items() if finite(v)]
    return max(items, key=lambda kv: kv[1]) if items else None


def names(items: list[str], limit: int = 4) -> str:
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
