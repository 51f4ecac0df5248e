"""Findings for causes that no rule suspected but whose fix removed the symptom, and the fix code of every finding.

A rule sees a mechanism; an intervention proves a cause. When the differential diagnosis finds a fix that makes
the model learn and no rule had named its cause, the verdict itself is the finding, ranked below the causes whose
mechanism was also seen. Every finding's code is written by its cause's fix, applied to the setup as given.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from torchmedic import signal_names as N
from torchmedic.causes import CAUSES
from torchmedic.context import Context
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.fixes.registry import FIXES, Applied, Refused, apply
from torchmedic.rules.pre.common import symptom_evidence
from torchmedic.verdict import Verdicts

VERIFIED_ONLY = 0.45  # a fix removed the symptom, but no rule saw the mechanism: other fixes may work as well ...
PER_EFFECT = 0.3  # ... more likely the more of the symptom it removed (skill or gain, 0 .. 1)
INIT_CAUSES = ("init.too_small", "init.too_large", "init.symmetric", "init.dead_units")
DEFAULT_GAIN = 0.58  # std(W) * sqrt(fan_in) of PyTorch's default init: below it the signal shrinks with depth


def _init_cause(ctx: Context) -> str:
    """Which init cause a re-init that worked points to, from the measured weights: identical rows, dead inputs,
    or weights smaller or larger than PyTorch's default."""
    s = ctx.signals
    if any(n == 1 for n in s.scoped(N.WEIGHT_DISTINCT_ROWS).values()):
        return "init.symmetric"
    if any(share >= ctx.config.thresholds.dead_fraction for share in s.scoped(N.ACT_IN_DEAD).values()):
        return "init.dead_units"
    gains = [g for g in s.scoped(N.WEIGHT_GAIN).values() if g == g]
    return "init.too_large" if gains and statistics.median(gains) > DEFAULT_GAIN else "init.too_small"


def from_interventions(ctx: Context, v: Verdicts, findings: list[Finding]) -> list[Finding]:
    """A finding for each cause whose fix removed the symptom although no rule named it."""
    named = {f.cause for f in findings}
    t = ctx.config.thresholds
    found: list[Finding] = []
    if not v.stuck:
        return found  # the setup learns (maybe only when trained longer): no symptom for a fix to remove
    for cause, check in v.by_cause.items():
        if not check.passed:
            continue
        if cause in INIT_CAUSES:
            cause = _init_cause(ctx)
            if any(c in named for c in INIT_CAUSES):
                continue
        if cause in named:
            continue
        named.add(cause)
        effect = max(0.0, min(1.0, check.effect))
        symptom = f"the model {v.symptom}" if v.symptom is not None else "the model does not learn"
        found.append(
            Finding(
                cause,
                VERIFIED_ONLY + PER_EFFECT * effect,
                f"{symptom}; {CAUSES[cause].title}: with only that fixed, the symptom goes ({check}).",
                [
                    Evidence(
                        "held-out score with the fix (skill or gain)", check.after, f"> {check.before:.3g} without"
                    ),
                    *symptom_evidence(v, t),
                ],
                Fix(f"Fix it as the verified trial did: {_what(ctx, cause)}."),
                check,
            )
        )
    return found


def _what(ctx: Context, cause: str) -> str:
    applied = ctx.applied.get(cause) or next((a for c, a in ctx.applied.items() if FIXES[c] is FIXES[cause]), None)
    return applied.what if applied is not None else CAUSES[cause].title


def with_verdict(finding: Finding, v: Verdicts) -> Finding:
    """The finding with the verdict of its fix when the differential diagnosis tried it and the rule attached none
    (a cause seen in the structure): the report then says whether that fix removed the symptom."""
    check = v.by_cause.get(finding.cause)
    return finding if finding.verification is not None or check is None else replace(finding, verification=check)


def with_code(ctx: Context, finding: Finding) -> Finding:
    """The finding with the lines its cause's fix writes for the user's script (the fix applied to a copy of the
    setup as given, or its refusal's lines when only the user can make the change)."""
    if finding.cause not in FIXES:
        return finding
    outcome: Applied | Refused | None = ctx.applied.get(finding.cause)
    if outcome is None:
        try:
            outcome = apply(ctx, finding.cause, ctx.setup())
        except Exception as exc:  # a fix that breaks on an unusual model leaves the finding without code
            ctx.skipped.append(f"fix code for {finding.cause}: {type(exc).__name__}: {exc}")
            return finding
    code = outcome.code
    if not code:
        return finding
    return replace(finding, fix=Fix(finding.fix.advice, code))
