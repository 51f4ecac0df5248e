"""What a rule concludes: a cause code, how sure, the numbers behind it and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torchmedic.signals import Value, json_safe


@dataclass(frozen=True)
class Evidence:
    """One measurement behind a finding, with the range a healthy setup shows."""

    name: str
    value: Value
    healthy: str
    scope: str = ""

    def __str__(self) -> str:
        where = f" in {self.scope}" if self.scope else ""
        return f"{self.name}{where} = {format_value(self.value)} (healthy: {self.healthy})"


GONE, FADING, STAYS = "gone", "fading", "stays"


@dataclass(frozen=True)
class Verification:
    """The outcome of re-running the short trial on a copy with the candidate fix applied. `verdict` is "gone"
    (the fixed copy learns), "fading" (it moves the right way, too little to tell within the trial) or "stays"."""

    intervention: str
    metric: str
    before: float
    after: float
    verdict: str
    effect: float = 0.0  # how far the held-out score moved (skill for classes, gain for values)
    partners: tuple[str, ...] = ()  # causes whose fixes were applied together with this one

    @property
    def passed(self) -> bool:
        return self.verdict == GONE

    def __str__(self) -> str:
        verdict = {GONE: "symptom gone", FADING: "symptom fading, too slowly to be sure"}.get(
            self.verdict, "symptom stays"
        )
        return (
            f"{self.intervention}: {self.metric} {format_value(self.before)} -> {format_value(self.after)} ({verdict})"
        )


@dataclass(frozen=True)
class Fix:
    """What to change, in words and as code in the user's terms."""

    advice: str
    code: str = ""

    def __str__(self) -> str:
        return self.advice + (f"\n{self.code}" if self.code else "")


@dataclass
class Finding:
    """A diagnosed root cause. `cause` is a code from docs/causes.md; `confidence` lies in [0, 1]."""

    cause: str
    confidence: float
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    fix: Fix = field(default_factory=lambda: Fix(""))
    verification: Verification | None = None
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = [{**asdict(e), "value": json_safe(e.value)} for e in self.evidence]
        return json_safe(data)


def format_value(value: Any) -> str:
    """Numbers as a person reads them: 3 significant digits, scientific notation when very large or small."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
            return f"{value:.2e}"
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(format_value(v) for v in list(value)[:12])
        return f"[{shown}{', ...' if len(value) > 12 else ''}]"
    return str(value)
