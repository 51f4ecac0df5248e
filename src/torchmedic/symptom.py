"""The symptom a short training run shows, read from the predictions on held-out samples: does the model learn,
stay no better than a constant, collapse onto one output or class, diverge, or fit only what it trained on?

A loss that falls while every prediction stays in one class is the symptom; so is a held-out loss worse than the
best constant output with predictions at chance. What the user sees after a real run is what counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torchmedic.finding import format_value
from torchmedic.metrics import Metrics
from torchmedic.task import Task
from torchmedic.thresholds import Thresholds
from torchmedic.trial import TrialResult

LEARNS, CONSTANT, COLLAPSED, DIVERGED, OVERFITS = "learns", "constant", "collapsed", "diverged", "overfits"
WORDS = {
    LEARNS: "learns",
    CONSTANT: "no better than a constant output",
    COLLAPSED: "collapsed onto one output",
    DIVERGED: "diverged",
    OVERFITS: "fits its training batches but not held-out ones",
}


@dataclass(frozen=True)
class Symptom:
    """What one trial showed on held-out samples, with the numbers behind it."""

    kind: str
    steps: int
    gain: float  # held-out gain over the best constant output (R^2 for MSE)
    train_gain: float  # the same on the first training batch
    skill: float | None  # held-out balanced accuracy rescaled from chance (0) to perfect (1); None for regression
    top_fraction: float | None  # share of held-out predictions on the most predicted class
    top_class: int | None
    majority: float | None  # share of the most frequent true class among the held-out labels
    loss_first: float
    loss_last: float
    classes: bool  # the predictions are classes (argmax, a threshold), not values

    @property
    def present(self) -> bool:
        return self.kind != LEARNS

    @property
    def score(self) -> float:
        """One number that rises as the symptom goes: skill for classes, gain for values; -inf when diverged."""
        if self.kind == DIVERGED:
            return -math.inf
        value = self.skill if self.skill is not None else self.gain
        return value if math.isfinite(value) else -math.inf

    def __str__(self) -> str:
        after = f"after {self.steps} steps"
        if self.kind == DIVERGED:
            if not math.isfinite(self.loss_first):
                return "diverged at once: the training loss was non-finite on the first batch"
            if not math.isfinite(self.loss_last):
                return f"diverged {after}: the training loss became non-finite"
            if self.loss_last > self.loss_first:
                first, last = format_value(self.loss_first), format_value(self.loss_last)
                return f"diverged {after}: the training loss rose from {first} to {last}"
            return f"diverged {after}: the held-out loss ended {format_value(1 - self.gain)}x the best constant's"
        if self.kind == COLLAPSED:
            if not self.classes:
                return f"collapsed {after}: the output is the same for every held-out sample (gain {self.gain:.2f})"
            share = f"{self.top_fraction:.0%}" if self.top_fraction is not None else "all"
            if self.top_class is None:  # multi-label: per label, one value predicted for (nearly) every sample
                majority = f" (its commoner value holds {self.majority:.0%} of the targets)" if self.majority else ""
                return f"collapsed {after}: {share} of each label's held-out predictions are one value{majority}"
            majority = f" (the largest class holds {self.majority:.0%} of the labels)" if self.majority else ""
            return f"collapsed {after}: {share} of held-out predictions are class {self.top_class}{majority}"
        if self.kind == OVERFITS:
            return (
                f"fits its training batches {after} (gain {format_value(self.train_gain)}) but not held-out ones "
                f"(gain {format_value(self.gain)}{self._skill()})"
            )
        if self.kind == CONSTANT:
            gain = format_value(self.gain)
            return f"is no better than a constant output {after}: held-out gain {gain}{self._skill()}"
        return f"learns {after}: held-out gain {format_value(self.gain)}{self._skill()}"

    def _skill(self) -> str:
        if self.skill is None:
            return ""
        return f", balanced accuracy {self.skill:.2f} of the way from chance to perfect"


def _collapsed(held: Metrics, t: Thresholds) -> bool:
    """(Nearly) every prediction is one class, more than the labels warrant (a perfect model on 95/5 labels puts
    95% on one class)."""
    if held.top_fraction is None or held.chance is None or held.chance >= 1:
        return False
    majority = held.majority or 0.0
    return held.top_fraction >= max(t.collapse_share, majority + t.collapse_margin * (1 - majority))


def learned(held: Metrics, t: Thresholds) -> bool:
    """Held-out predictions that follow the inputs without a collapse, or values that beat the best constant."""
    if not held.finite_outputs or _collapsed(held, t):
        return False
    skill = held.skill
    return (skill is not None and skill >= t.min_skill) or held.gain >= t.min_gain


def read_symptom(trial: TrialResult, task: Task, t: Thresholds) -> Symptom:
    """The symptom of `trial`, judged on its held-out metrics after training."""
    held, fit = trial.after_held_out, trial.after_train
    losses = trial.losses
    first = losses[0] if losses else math.nan
    window = losses[-3:]
    last = sum(window) / len(window) if window else math.nan
    skill = held.skill
    classes = skill is not None
    kind = _kind(trial, held, fit, first, last, skill, t)
    return Symptom(kind, trial.steps, held.gain, fit.gain, skill, held.top_fraction, held.top_class, held.majority,
                   first, last, classes)  # fmt: skip


def _kind(
    trial: TrialResult,
    held: Metrics,
    fit: Metrics,
    first: float,
    last: float,
    skill: float | None,
    t: Thresholds,
) -> str:
    learned = (skill is not None and skill >= t.min_skill) or held.gain >= t.min_gain
    if trial.diverged or not held.finite_outputs:
        return DIVERGED
    if math.isfinite(first) and first > 0 and last > t.max_loss_rise * first + 1e-3:
        return DIVERGED  # the training loss rose: steps overshoot, whatever the predictions show for now
    if _collapsed(held, t):
        return COLLAPSED
    if learned:
        return LEARNS  # predictions follow the inputs, even if a few confidently wrong ones blow up the loss
    descending = math.isfinite(first) and first > 0 and last <= t.descending_fall * first
    if not held.gain > t.min_held_out_gain and not descending:
        return DIVERGED  # far worse than a constant, and not from a start far off the targets that steps close in on
    if skill is None and held.output_std <= t.min_output_spread * max(1.0, abs(held.loss) ** 0.5):
        return COLLAPSED
    if fit.gain >= t.min_gain and math.isfinite(fit.gain):
        return OVERFITS
    return CONSTANT
