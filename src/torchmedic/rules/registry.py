"""The rule registry: every rule is a pure function from signals to a finding, registered with its cause code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torchmedic.causes import CAUSES
from torchmedic.finding import Finding
from torchmedic.signals import Signals

# A rule reads signals (and, for pre rules, the DiagnoseConfig holding its thresholds) and returns a finding or None.
RuleFn = Callable[..., Finding | None]


@dataclass(frozen=True)
class Rule:
    cause: str
    seen_by: str  # "pre": reads diagnose() signals; "live": reads the training monitor's signals
    fn: RuleFn

    @property
    def name(self) -> str:
        return f"{self.seen_by}:{self.cause}"


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
        RULES.append(Rule(cause, seen_by, fn))
        return fn

    return register


def rules_for(seen_by: str) -> list[Rule]:
    return [r for r in RULES if r.seen_by == seen_by]


def evaluate(signals: Signals, seen_by: str, *context: Any) -> list[Finding]:
    """Every finding the `seen_by` rules draw from the signals (`context` is passed on, e.g. the config), most
    confident first."""
    findings = [f for r in rules_for(seen_by) if (f := r.fn(signals, *context)) is not None]
    return sorted(findings, key=lambda f: -f.confidence)
