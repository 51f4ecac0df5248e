"""Did a fix remove the symptom? The verdict of one intervention, and every verdict of one diagnosis, typed.

A fix removes the symptom when the fixed copy learns (on held-out samples, read from its predictions) where the
reference did not, stops a divergence, or makes the loss fall fast enough to learn within a realistic number of
steps. How far its score moved (skill for classes, gain for values) ranks the fixes that worked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from torchmedic.finding import FADING, GONE, STAYS, Verification
from torchmedic.symptom import DIVERGED, Symptom
from torchmedic.thresholds import Thresholds
from torchmedic.trial import TrialResult

RANK = {STAYS: 0, FADING: 1, GONE: 2}
CLEAR_EFFECT = 2.0  # a fix that lifts the held-out score by twice the margin removes what symptom there was


def falling_rate(losses: list[float]) -> float:
    """How fast the training loss falls per step over the second half of a trial (least-squares slope, sign
    flipped): the first steps are left out, where a divergence spike or a warm-up would dominate."""
    tail = losses[len(losses) // 2 :]
    if len(tail) < 3:
        return 0.0
    n = len(tail)
    mean_x, mean_y = (n - 1) / 2, sum(tail) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(tail))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return -num / den


def steps_to_learn(trial: TrialResult, t: Thresholds) -> float:
    """Steps the training loss needs, at the rate it fell, to beat the constant output by min_gain: a linear
    extrapolation (optimistic, as loss curves flatten); inf when it did not fall."""
    return steps_to_reach(trial.losses, trial.after_train.floor, t)


def steps_to_reach(losses: list[float], floor: float, t: Thresholds) -> float:
    """`steps_to_learn` from the losses so far and the loss of the best constant output."""
    if len(losses) < 6 or not all(math.isfinite(x) for x in losses[-3:]):
        return math.inf
    last = sum(losses[-3:]) / 3
    remaining = last - floor * (1 - t.min_gain)
    if remaining <= 0:
        return 0.0
    rate = falling_rate(losses)
    return remaining / rate if rate > 0 else math.inf


def judge(
    reference: Symptom, fixed: Symptom, ref_trial: TrialResult, fixed_trial: TrialResult, label: str, t: Thresholds
) -> Verification:
    """The verdict on a fix: `fixed` (its trial) against `reference` (the same setup without the fix)."""
    effect = _effect(reference, fixed)
    calmed = reference.kind == DIVERGED and _calm(fixed, t)
    clearly = effect >= CLEAR_EFFECT * t.verify_margin  # learns much better even where the reference half learns
    if not fixed.present and ((reference.present and effect >= t.verify_margin) or calmed or clearly):
        return Verification(label, "held-out score", _shown(reference), _shown(fixed), GONE, effect)
    if calmed and fixed.gain >= 0:
        return Verification(label, "held-out gain", reference.gain, fixed.gain, GONE, effect)
    slow, fast = steps_to_learn(ref_trial, t), steps_to_learn(fixed_trial, t)
    if slow > t.realistic_steps >= fast and fixed.kind != DIVERGED and fixed.gain >= reference.gain:
        beyond_prior = math.isfinite(fixed.gain) and fixed.gain > t.prior_margin  # not only the label prior fitted
        return Verification(label, "steps to learn at the trial's rate", slow, fast, GONE if beyond_prior else FADING,
                            effect)  # fmt: skip
    if effect >= t.verify_margin and fixed.kind != DIVERGED:
        return Verification(label, "held-out score", _shown(reference), _shown(fixed), FADING, effect)
    return Verification(label, "held-out score", _shown(reference), _shown(fixed), STAYS, effect)


def _calm(fixed: Symptom, t: Thresholds) -> bool:
    """A trial that no longer diverges in any way: its training loss fell and its held-out loss stayed within twice
    the best constant's (a run at the edge of divergence can fall short of the rise threshold by luck alone)."""
    return fixed.kind != DIVERGED and fixed.loss_last < fixed.loss_first and fixed.gain > t.min_held_out_gain


def _effect(reference: Symptom, fixed: Symptom) -> float:
    """How far the fix moved the score (0 .. 1 for a symptom removed from chance to perfect); a fix that ends a
    divergence counts as much as its own score."""
    after = fixed.score
    if not math.isfinite(after):
        return -math.inf if math.isfinite(reference.score) else 0.0
    before = reference.score if math.isfinite(reference.score) else min(0.0, after)
    return after - before


def _shown(symptom: Symptom) -> float:
    return symptom.score if math.isfinite(symptom.score) else symptom.gain


@dataclass
class Verdicts(Mapping[str, Verification]):
    """The symptom the baseline trial showed and, by cause, the verdict of the fix tried for it (the best one when
    it was tried several ways: alone, on top of other fixes, at another LR)."""

    symptom: Symptom | None = None
    trial: TrialResult | None = None  # the baseline trial the symptom was read from
    by_cause: dict[str, Verification] = field(default_factory=dict)

    def record(self, cause: str, verification: Verification) -> bool:
        """Keep `verification` unless the cause already has a better one; True when it was kept."""
        old = self.by_cause.get(cause)
        if old is not None and (RANK[verification.verdict], verification.effect) <= (RANK[old.verdict], old.effect):
            return False
        self.by_cause[cause] = verification
        return True

    def passed(self, cause: str) -> bool:
        check = self.by_cause.get(cause)
        return check is not None and check.passed

    def __getitem__(self, cause: str) -> Verification:
        return self.by_cause[cause]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_cause)

    def __len__(self) -> int:
        return len(self.by_cause)

    @property
    def stuck(self) -> bool:
        """The baseline showed the symptom."""
        return self.symptom is not None and self.symptom.present
