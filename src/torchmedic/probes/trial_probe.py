"""The baseline trial: a few optimizer steps on a copy exactly as the user set it up, and overfit-one-batch."""

from __future__ import annotations

import statistics

from torchmedic.context import Context
from torchmedic.metrics import Metrics
from torchmedic.probes.registry import probe
from torchmedic.setup import Setup
from torchmedic.signals import Signals
from torchmedic.symptom import read_symptom
from torchmedic.thresholds import Thresholds
from torchmedic.trial import TrialResult
from torchmedic.verdict import falling_rate


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


def slow_start(metrics: Metrics, t: Thresholds) -> bool:
    """Not learned yet but not broken either: predictions not yet following the inputs and a held-out loss between
    the constant output's and twice it. A model far worse than a constant has diverged; more steps would not change
    the diagnosis."""
    skill = metrics.skill
    learned = (skill is not None and skill >= t.min_skill) or metrics.gain >= t.min_gain
    return metrics.gain > -1.0 and not learned


@probe("baseline_trial", order=100, steps=-1)
def baseline_trial(ctx: Context) -> None:
    c, t = ctx.config, ctx.config.thresholds
    r = ctx.trial(ctx.setup(), "baseline", extend_to=c.long_trial_steps, extend_if=lambda m: slow_start(m, t))
    ctx.trial_steps = r.steps  # every later trial runs as long, so that they compare
    s = ctx.signals
    emit_trial(s, "trial", r)
    symptom = read_symptom(r, ctx.task, t)
    s.emit("symptom.kind", symptom.kind)
    s.emit("symptom.text", str(symptom))
    if r.nonfinite_step is not None:
        s.emit("trial.nonfinite_step", r.nonfinite_step)
    training = r.training
    for name, value in training.grad_norm.items():
        s.emit("grad.norm", value, name)
    s.emit("grad.missing", training.missing_grad)
    for name, value in training.update_ratio.items():
        s.emit("update.ratio", value, name)
    if training.update_ratio:
        s.emit("update.ratio_median", statistics.median(training.update_ratio.values()))
    for name, value in training.weight_shrink.items():
        s.emit("weight.shrink", value, name)
    if training.weight_shrink:
        s.emit("weight.shrink_median", statistics.median(training.weight_shrink.values()))
    s.emit("trial.changed_share", sum(training.changed.values()) / max(1, len(training.changed)))
    if r.activity_after is not None:
        for name, layer in r.activity_after.layers.items():
            if not layer.in_is_data:
                s.emit("act.dead_after", layer.in_dead, name)
    train_mode = r.after_train
    s.emit("trial.train_batch_loss", train_mode.loss)


def stuck(ctx: Context) -> bool:
    """The baseline shows the symptom: worth finding out whether it can fit, and at which LR it would learn."""
    return ctx.untrainable is None and ctx.signals.get("symptom.kind", "learns") != "learns"


def control_setup(ctx: Context) -> Setup:
    """A fresh setup at the LR the range test suggests (the user's when it found none): control experiments
    ask what the model and data can do, which a far-off LR would hide."""
    setup = ctx.setup()
    suggestion = ctx.signals.get("lr_range.suggestion")
    if suggestion is None or not ctx.spec.lr > 0:
        return setup
    return setup.but(spec=ctx.spec.scaled_lr(suggestion / ctx.spec.lr), history=(f"lr {suggestion:.1e}",))


@probe("overfit_one_batch", order=110, when=stuck, steps=-1)
def overfit_one_batch(ctx: Context) -> None:
    """Train on the first batch alone: a setup that cannot fit one batch cannot learn at all."""
    setup = control_setup(ctx).but(train=ctx.train[:1], held_out=ctx.train[0])
    r = ctx.trial(setup, "overfit one batch", steps=ctx.config.trial_steps)
    ctx.signals.emit("overfit.gain", r.after_train.gain)
    ctx.signals.emit("overfit.diverged", r.diverged)
