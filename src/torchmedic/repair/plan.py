"""Which fixes to apply in which order, and the attempts to make when the first plan does not verify."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

from torchmedic.context import Context
from torchmedic.errors import TorchMedicWarning
from torchmedic.finding import Finding
from torchmedic.fixes.lr import retuned_lr
from torchmedic.fixes.registry import FIXES, STAGES, Applied, Remedy
from torchmedic.repair.change import Change
from torchmedic.setup import Setup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One fix and the findings it answers (one re-init answers every init.* finding)."""

    remedy: Remedy
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Variant:
    """One attempt's choices: which option of each fix that has alternatives, and how the LR is set:
    "plan" (only for an lr.* finding), "range" (the range test's LR in any case) or "lower" (a tenth of it)."""

    label: str
    alternatives: bool
    lr: str


@dataclass
class Built:
    """A setup with every fix of a variant applied, what changed, what was refused and what needed no change
    (with the reasons)."""

    setup: Setup
    changes: list[Change] = field(default_factory=list)
    refused: list[tuple[Finding, str]] = field(default_factory=list)
    needless: list[tuple[Finding, str]] = field(default_factory=list)  # fixes that found nothing to change
    by_hand: list[tuple[Finding, str]] = field(default_factory=list)  # fixes the pilot saw but only the user can make


def steps_for(findings: list[Finding]) -> tuple[list[Step], list[Finding]]:
    """The findings grouped by fix, in stage order (one LR fix: the most confident lr finding's); and the findings
    no fix is registered for."""
    groups: dict[object, tuple[Remedy, list[Finding]]] = {}
    orphans = []
    for finding in findings:
        found = FIXES.get(finding.cause)
        if found is None:
            orphans.append(finding)
            continue
        key = "lr" if found.stage == "lr" else id(found.fn)
        groups.setdefault(key, (found, []))[1].append(finding)
    steps = [Step(r, tuple(fs)) for r, fs in groups.values()]
    return sorted(steps, key=lambda s: STAGES.index(s.remedy.stage)), orphans


def variants(steps: list[Step], limit: int) -> list[Variant]:
    """The primary plan first, then a range-test LR, the remedies' alternatives, and a lower LR."""
    has_lr = any(s.remedy.stage == "lr" for s in steps)
    alternatives = any(s.remedy.options > 1 and s.remedy.stage != "lr" for s in steps)
    found = [Variant("as diagnosed", False, "plan")]
    if not has_lr:
        found.append(Variant("with the range test's LR", False, "range"))
    if alternatives:
        found.append(Variant("alternative remedies", True, "plan" if has_lr else "range"))
    found.append(Variant("a tenth of the range test's LR", False, "lower"))
    if alternatives:
        found.append(Variant("alternative remedies, a tenth of the range test's LR", True, "lower"))
    return found[:limit]


def build(ctx: Context, steps: list[Step], variant: Variant, start: Setup) -> Built:
    """Apply every step to a fresh copy of `start`, stage by stage; the LR as the variant says."""
    built = Built(start.copied())
    lr_done = False
    for step in steps:
        if step.remedy.stage == "lr":
            lr_done = True
            option = 1 if variant.lr == "lower" else 0
        else:
            option = 1 if variant.alternatives and step.remedy.options > 1 else 0
        _apply(ctx, built, step.remedy, list(step.findings), option)
    if not lr_done and variant.lr in ("range", "lower"):
        retune = Remedy("retuned_lr", (), "lr", retuned_lr, 2, False)
        _apply(ctx, built, retune, [], 1 if variant.lr == "lower" else 0)
    return built


def _apply(ctx: Context, built: Built, remedy: Remedy, findings: list[Finding], option: int) -> None:
    before = built.setup
    try:
        outcome = remedy.fn(ctx, before.copied(), option)
    except MemoryError:
        raise
    except Exception as exc:  # a fix that breaks on an unusual model is refused, not fatal
        message = f"{remedy.name} raised {type(exc).__name__}: {exc}"
        warnings.warn(f"torchmedic fix failed and was skipped: {message}", TorchMedicWarning, stacklevel=3)
        built.refused.extend((f, message) for f in findings)
        return
    if not isinstance(outcome, Applied):
        (built.needless if outcome.needless else built.refused).extend((f, outcome.reason) for f in findings)
        log.info("%s refused: %s", remedy.name, outcome.reason)
        return
    if len(outcome.setup.by_hand) > len(before.by_hand):
        built.by_hand.extend((f, outcome.what) for f in findings)
    causes = tuple(f.cause for f in findings) or (_lr_cause(before, outcome.setup),)
    why = (
        findings[0].summary
        if findings
        else f"the setup as repaired has its own best LR (its range test), not lr={before.spec.lr:.2g}"
    )
    built.setup = outcome.setup.but(history=(*before.history, outcome.what))
    built.changes.append(Change(causes, outcome.what, why, outcome.code))


def _lr_cause(before: Setup, after: Setup) -> str:
    return "lr.too_low" if after.spec.lr > before.spec.lr else "lr.too_high"
