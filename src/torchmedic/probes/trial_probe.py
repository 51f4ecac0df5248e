"""The baseline trial: a few optimizer steps on a copy exactly as the user set it up, and overfit-one-batch."""

from __future__ import annotations

import statistics

import torch

from torchmedic.config import DiagnoseConfig
from torchmedic.context import Context
from torchmedic.probes.registry import probe
from torchmedic.signals import Signals
from torchmedic.trial import Metrics, TrialResult, TrialSetup


def falling_rate(losses: list[float]) -> float:
    """How fast the training loss falls per step over the second half of a trial (least-squares slope, sign
    flipped): the first steps are left out, where a divergence spike or a warm-up would dominate."""
    tail = torch.tensor(losses[len(losses) // 2 :], dtype=torch.float64)
    steps = torch.arange(len(tail), dtype=torch.float64)
    steps = steps - steps.mean()
    return float(-(steps * (tail - tail.mean())).sum() / (steps * steps).sum())


def emit_trial(s: Signals, prefix: str, r: TrialResult) -> None:
    """The numbers of one trial under `prefix` (e.g. "trial" or "verify.lr.too_high")."""
    s.emit(f"{prefix}.steps", r.steps)
    s.emit(f"{prefix}.seconds", r.seconds)
    s.emit(f"{prefix}.label", r.label)
    s.emit(f"{prefix}.lr", r.lr)
    if r.losses:
        window = min(3, len(r.losses))
        last = sum(r.losses[-window:]) / window
        s.emit(f"{prefix}.loss_first", r.losses[0])
        s.emit(f"{prefix}.loss_last", last)
        s.emit(f"{prefix}.loss_max", max(r.losses))
        if len(r.losses) >= 6:
            s.emit(f"{prefix}.loss_rate", falling_rate(r.losses))
    s.emit(f"{prefix}.diverged", r.diverged)
    s.emit(f"{prefix}.floor", r.before_train.floor)
    s.emit(f"{prefix}.gain_before", r.before_train.gain)
    s.emit(f"{prefix}.gain", r.after_train.gain)
    s.emit(f"{prefix}.held_out_gain_before", r.before_held_out.gain)
    s.emit(f"{prefix}.held_out_gain", r.after_held_out.gain)
    s.emit(f"{prefix}.held_out_loss", r.after_held_out.loss)
    s.emit(f"{prefix}.held_out_floor", r.after_held_out.floor)
    s.emit(f"{prefix}.output_std_before", r.before_held_out.output_std)
    s.emit(f"{prefix}.output_std", r.after_held_out.output_std)
    for key in ("top_fraction", "balanced_accuracy", "accuracy", "predicted_classes", "chance", "top_class"):
        value = getattr(r.after_held_out, key)
        if value is not None:
            s.emit(f"{prefix}.{key}", value)
    if r.error:
        s.emit(f"{prefix}.error", r.error)


def slow_start(metrics: Metrics, c: DiagnoseConfig) -> bool:
    """Not learned yet but not broken either: held-out loss between the constant output's and twice it. A model
    far worse than a constant has diverged; more steps would not change the diagnosis."""
    return -1.0 < metrics.gain < c.min_gain


@probe("baseline_trial", order=100, steps=-1)
def baseline_trial(ctx: Context) -> None:
    c = ctx.config
    r = ctx.trial(ctx.setup("baseline"), extend_to=c.long_trial_steps, extend_if=lambda m: slow_start(m, c))
    ctx.trial_steps = r.steps  # every later trial runs as long, so that they compare
    s = ctx.signals
    emit_trial(s, "trial", r)
    if r.nonfinite_step is not None:
        s.emit("trial.nonfinite_step", r.nonfinite_step)
    for name, value in r.grad_norm.items():
        s.emit("grad.norm", value, name)
    s.emit("grad.missing", r.missing_grad)
    for name, value in r.update_ratio.items():
        s.emit("update.ratio", value, name)
    if r.update_ratio:
        s.emit("update.ratio_median", statistics.median(r.update_ratio.values()))
    for name, value in r.weight_shrink.items():
        s.emit("weight.shrink", value, name)
    if r.weight_shrink:
        s.emit("weight.shrink_median", statistics.median(r.weight_shrink.values()))
    s.emit("trial.changed_share", sum(r.changed.values()) / max(1, len(r.changed)))
    if r.activity_after is not None:
        for name, layer in r.activity_after.layers.items():
            if not layer.in_is_data:
                s.emit("act.dead_after", layer.in_dead, name)
    train_mode = r.after_train
    s.emit("trial.train_batch_loss", train_mode.loss)


def _stuck(ctx: Context) -> bool:
    """The baseline did not beat the constant output on held-out data: worth finding out whether it can fit."""
    gain = ctx.signals.get("trial.held_out_gain")
    return gain is not None and gain < ctx.config.min_gain


def control_setup(ctx: Context, label: str) -> TrialSetup:
    """A fresh setup at the LR the range test suggests (the user's when it found none): control experiments
    ask what the model and data can do, which a far-off LR would hide."""
    setup = ctx.setup(label)
    suggestion = ctx.signals.get("lr_range.suggestion")
    if suggestion is None or not ctx.spec.lr > 0:
        return setup
    return setup.but(label=f"{label} at lr {suggestion:.1e}", spec=ctx.spec.scaled_lr(suggestion / ctx.spec.lr))


@probe("overfit_one_batch", order=110, when=_stuck, steps=-1)
def overfit_one_batch(ctx: Context) -> None:
    """Train on the first batch alone: a setup that cannot fit one batch cannot learn at all."""
    setup = control_setup(ctx, "overfit one batch").but(train=ctx.train[:1], held_out=ctx.train[0])
    r = ctx.trial(setup, steps=ctx.config.trial_steps)
    ctx.signals.emit("overfit.gain", r.after_train.gain)
    ctx.signals.emit("overfit.diverged", r.diverged)
