"""The rule registry: every rule is a pure function from signals (and, pre-flight, the verdicts of the fixes tried)
to a claim, registered with its cause code; the registry stamps the cause onto the finding it makes of the claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torchmedic.causes import CAUSES
from torchmedic.finding import Evidence, Finding, Fix, Verification
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts


@dataclass(frozen=True)
class Claim:
    """What a rule concludes about its cause: how sure, in words and numbers, and what to do. `code` is left empty
    by pre-flight rules: the cause's fix writes it (see `fixes`)."""

    confidence: float
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    advice: str = ""
    code: str = ""
    verification: Verification | None = None
    step: int | None = None


# A pre rule reads (signals, thresholds, verdicts); a live rule reads (signals, thresholds).
RuleFn = Callable[..., Claim | None]


@dataclass(frozen=True)
class Rule:
    cause: str
    seen_by: str  # "pre": reads diagnose() signals; "live": reads the training monitor's signals
    fn: RuleFn

    @property
    def name(self) -> str:
        return f"{self.seen_by}:{self.cause}"

    def __call__(self, signals: Signals, thresholds: Thresholds, verdicts: Verdicts | None = None) -> Finding | None:
        """The finding this rule draws, with its cause stamped on."""
        if self.seen_by == "pre":
            claim = self.fn(signals, thresholds, Verdicts() if verdicts is None else verdicts)
        else:
            claim = self.fn(signals, thresholds)
        if claim is None:
            return None
        return Finding(self.cause, min(1.0, max(0.0, claim.confidence)), claim.summary, list(claim.evidence),
                       Fix(claim.advice, claim.code), claim.verification, claim.step)  # fmt: skip


RULES: list[Rule] = []


def rule(cause: str, *, seen_by: str = "pre") -> Callable[[RuleFn], RuleFn]:
    """Register `fn` as the rule that decides `cause` from the signals of `seen_by` ("pre" or "live")."""
    if cause not in CAUSES:
        raise ValueError(f"unknown cause code {cause!r}; add it to docs/causes.md and torchmedic.causes first")
    if seen_by not in CAUSES[cause].seen_by:
        raise ValueError(f"{cause} is not seen by {seen_by!r} according to docs/causes.md")

    def register(fn: RuleFn) -> RuleFn:
        if any(r.cause == cause and r.seen_by == seen_by for r in RULES):
            raise ValueError(f"a {seen_by} rule for {cause} is already registered")
        if not (fn.__doc__ or "").strip():
            raise ValueError(f"the {seen_by} rule for {cause} needs a docstring giving its mechanism")
        RULES.append(Rule(cause, seen_by, fn))
        return fn

    return register


def rules_for(seen_by: str) -> list[Rule]:
    return [r for r in RULES if r.seen_by == seen_by]


def evaluate(signals: Signals, seen_by: str, thresholds: Thresholds, verdicts: Verdicts | None = None) -> list[Finding]:
    """Every finding the `seen_by` rules draw from the signals, most confident first."""
    findings = [f for r in rules_for(seen_by) if (f := r(signals, thresholds, verdicts)) is not None]
    return sorted(findings, key=lambda f: -f.confidence)
