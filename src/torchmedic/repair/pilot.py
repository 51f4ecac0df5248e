"""The verification run: train a fresh copy of one setup for a few steps and judge it on held-out samples.

repair() runs it on the user's setup (before) and on the repaired one (after), with the same seed and steps, and
on the same training batches unless a remedy changed the loader; held-out samples are never trained on.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch, primary_output
from torchmedic.repair.config import RepairConfig
from torchmedic.setup import Setup
from torchmedic.signals import json_safe
from torchmedic.task import Task, infer_task
from torchmedic.trial import TrialResult, run_trial


@dataclass(frozen=True)
class Pilot:
    """Held-out metrics of one setup before and after a short training run, and whether it learned."""

    label: str
    steps: int
    seconds: float
    task: str
    loss_before: float
    loss_after: float
    gain: float  # 1 - loss / loss of the best constant output: R^2 for MSE, <= 0 for a constant output
    accuracy: float | None
    balanced_accuracy: float | None
    chance: float | None  # balanced accuracy of guessing: 1 / classes present in the held-out labels
    top_fraction: float | None  # share of held-out predictions on the most predicted class
    learned: bool
    reason: str  # the verdict in numbers
    error: str = ""

    @property
    def skill(self) -> float | None:
        """Balanced accuracy rescaled so that chance is 0 and perfect is 1."""
        if self.balanced_accuracy is None or self.chance is None or self.chance >= 1:
            return None
        return (self.balanced_accuracy - self.chance) / (1 - self.chance)

    @property
    def score(self) -> float:
        """One number to rank attempts that did not verify: skill for classification, gain otherwise."""
        value = self.skill if self.skill is not None else self.gain
        return value if math.isfinite(value) and not self.error else -math.inf

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json_safe({**asdict(self), "skill": self.skill})
        return data


def run_pilot(label: str, setup: Setup, config: RepairConfig, deadline: float) -> Pilot:
    """Train a fresh model of `setup` for `config.pilot_steps` steps and judge it; an error in the model or the
    loss is a failed pilot, not an exception."""
    start = time.perf_counter()
    try:
        task = task_of(setup.model(fresh=True), setup.loss_fn, setup.train[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the setup's own warnings (broadcasting, ...) were reported by diagnose
            result = run_trial(setup, config.pilot_steps, task, seed=config.seed, deadline=deadline, track_layers=False)
    except MemoryError:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        nan = math.nan
        return Pilot(label, 0, time.perf_counter() - start, "", nan, nan, -math.inf, None, None, None, None, False,
                     f"raised {error}", error)  # fmt: skip
    return judged(label, result, task, config, time.perf_counter() - start)


def task_of(model: nn.Module, loss_fn: Callable[..., Any], batch: Batch) -> Task:
    """The task as the repaired loss and output define it (a replaced loss can change it)."""
    model.eval()  # no BatchNorm statistics move
    with torch.no_grad():
        outputs = batch.run(model)
    if primary_output(outputs) is None:
        raise TypeError(f"the model returned a {type(outputs).__name__} with no tensor in it")
    return infer_task(loss_fn, outputs, batch.targets)


def judged(label: str, result: TrialResult, task: Task, config: RepairConfig, seconds: float) -> Pilot:
    """The verdict: the training loss fell, and on held-out samples the model beats a constant output: classes above
    chance without a collapse onto one class, or a gain over the best constant output for anything else."""
    before, after = result.before_held_out, result.after_held_out
    loss_before = before.loss if before is not None else math.nan
    pilot = Pilot(label, result.steps, seconds, task.kind, loss_before, after.loss, after.gain, after.accuracy,
                  after.balanced_accuracy, after.chance, after.top_fraction, False, "", result.error or "")  # fmt: skip
    learned, reason = _verdict(pilot, after.majority, result, config)
    return Pilot(**{**asdict(pilot), "learned": learned, "reason": reason})


def _verdict(pilot: Pilot, majority: float | None, result: TrialResult, config: RepairConfig) -> tuple[bool, str]:
    t = config.diagnose.thresholds
    if result.error:
        return False, result.error
    if result.diverged or not math.isfinite(pilot.loss_after):
        return False, f"the loss went non-finite at step {result.nonfinite_step}"
    first, last = _ends(result.losses)
    if not last < first:
        return False, f"the training loss did not fall ({first:.4g} -> {last:.4g}, medians of the first/last steps)"
    skill = pilot.skill
    if skill is not None and pilot.top_fraction is not None and majority is not None:
        collapse = max(config.max_pilot_top_fraction, majority + t.collapse_margin * (1 - majority))
        if pilot.top_fraction >= collapse:
            return (
                False,
                f"{pilot.top_fraction:.0%} of held-out predictions are one class (collapse: >= {collapse:.0%})",
            )
        verdict = skill >= config.min_pilot_skill
        return verdict, (
            f"balanced accuracy {pilot.balanced_accuracy:.2f} vs chance {pilot.chance:.2f} (skill {skill:.2f}, "
            f"{'>=' if verdict else '<'} {config.min_pilot_skill:g}), {pilot.top_fraction:.0%} on the top class"
        )
    verdict = pilot.gain >= t.min_gain
    return (
        verdict,
        f"gain over the best constant output {pilot.gain:.2f} ({'>=' if verdict else '<'} {t.min_gain:g})",
    )


def _ends(losses: list[float]) -> tuple[float, float]:
    """Median training loss over the first and the last sixth of the steps: robust to one noisy batch. (The held-out
    loss may rise while the model improves, when a balanced sampler shifts the class prior it learns.)"""
    if not losses:
        return math.nan, math.nan
    k = max(1, len(losses) // 6)
    return statistics.median(losses[:k]), statistics.median(losses[-k:])
