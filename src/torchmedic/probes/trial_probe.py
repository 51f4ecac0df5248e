"""The baseline trial: a few optimizer steps on a copy exactly as the user set it up, and overfit-one-batch."""

from __future__ import annotations

import statistics

from torchmedic import signal_names as N
from torchmedic.context import Context
from torchmedic.metrics import Metrics
from torchmedic.probes.registry import probe
from torchmedic.setup import Setup
from torchmedic.signals import Signals
from torchmedic.symptom import read_symptom
from torchmedic.thresholds import Thresholds
from torchmedic.trial import Training, TrialResult
from torchmedic.verdict import falling_rate, steps_to_reach


def emit_trial(s: Signals, r: TrialResult) -> None:
    """The numbers of the baseline trial, for the report and the rules."""
    s.emit(N.TRIAL_STEPS, r.steps)
    s.emit(N.TRIAL_SECONDS, r.seconds)
    s.emit(N.TRIAL_LABEL, r.label)
    s.emit(N.TRIAL_LR, r.lr)
    if r.losses:
        window = min(3, len(r.losses))
        s.emit(N.TRIAL_LOSS_FIRST, r.losses[0])
        s.emit(N.TRIAL_LOSS_LAST, sum(r.losses[-window:]) / window)
        s.emit(N.TRIAL_LOSS_MAX, max(r.losses))
        if len(r.losses) >= 6:
            s.emit(N.TRIAL_LOSS_RATE, falling_rate(r.losses))
    s.emit(N.TRIAL_DIVERGED, r.diverged)
    s.emit(N.TRIAL_FLOOR, r.after_train.floor)
    if r.before_train is not None:
        s.emit(N.TRIAL_GAIN_BEFORE, r.before_train.gain)
    s.emit(N.TRIAL_GAIN, r.after_train.gain)
    if r.before_held_out is not None:
        s.emit(N.TRIAL_HELD_OUT_GAIN_BEFORE, r.before_held_out.gain)
        s.emit(N.TRIAL_OUTPUT_STD_BEFORE, r.before_held_out.output_std)
    s.emit(N.TRIAL_HELD_OUT_GAIN, r.after_held_out.gain)
    s.emit(N.TRIAL_HELD_OUT_LOSS, r.after_held_out.loss)
    s.emit(N.TRIAL_HELD_OUT_FLOOR, r.after_held_out.floor)
    s.emit(N.TRIAL_OUTPUT_STD, r.after_held_out.output_std)
    held = r.after_held_out
    for name, value in (
        (N.TRIAL_TOP_FRACTION, held.top_fraction),
        (N.TRIAL_BALANCED_ACCURACY, held.balanced_accuracy),
        (N.TRIAL_ACCURACY, held.accuracy),
        (N.TRIAL_PREDICTED_CLASSES, held.predicted_classes),
        (N.TRIAL_CHANCE, held.chance),
        (N.TRIAL_TOP_CLASS, held.top_class),
    ):
        if value is not None:
            s.emit(name, value)
    if r.error:
        s.emit(N.TRIAL_ERROR, r.error)


def slow_start(metrics: Metrics, training: Training, t: Thresholds) -> bool:
    """Not learned yet but on its way: predictions not yet following the inputs, a held-out loss between the
    constant output's and twice it, and a training loss falling fast enough to learn within a realistic run. A model
    far worse than a constant has diverged, one whose loss does not move is stuck; more steps tell nothing new (a
    healthy slow starter is trained longer only when no fix explains its symptom)."""
    skill = metrics.skill
    learned = (skill is not None and skill >= t.min_skill) or metrics.gain >= t.min_gain
    moving = steps_to_reach(training.losses, metrics.floor, t) <= t.realistic_steps
    return metrics.gain > -1.0 and not learned and moving


@probe("baseline_trial", order=100, steps=-1)
def baseline_trial(ctx: Context) -> None:
    c, t = ctx.config, ctx.config.thresholds
    r = ctx.trial(ctx.setup(), "baseline", extend_to=c.long_trial_steps, extend_if=lambda m, r: slow_start(m, r, t))
    ctx.trial_steps = max(r.steps, c.trial_steps)  # every later trial runs as long, so that they compare
    s = ctx.signals
    emit_trial(s, r)
    symptom = read_symptom(r, ctx.task, t)
    s.emit(N.SYMPTOM_KIND, symptom.kind)
    s.emit(N.SYMPTOM_TEXT, str(symptom))
    if r.nonfinite_step is not None:
        s.emit(N.TRIAL_NONFINITE_STEP, r.nonfinite_step)
    training = r.training
    for name, value in training.grad_norm.items():
        s.emit(N.GRAD_NORM, value, name)
    s.emit(N.GRAD_MISSING, training.missing_grad)
    for name, value in training.update_ratio.items():
        s.emit(N.UPDATE_RATIO, value, name)
    if training.update_ratio:
        s.emit(N.UPDATE_RATIO_MEDIAN, statistics.median(training.update_ratio.values()))
    for name, value in training.weight_shrink.items():
        s.emit(N.WEIGHT_SHRINK, value, name)
    if training.weight_shrink:
        s.emit(N.WEIGHT_SHRINK_MEDIAN, statistics.median(training.weight_shrink.values()))
    s.emit(N.TRIAL_CHANGED_SHARE, sum(training.changed.values()) / max(1, len(training.changed)))
    if r.activity_after is not None:
        for name, layer in r.activity_after.layers.items():
            s.emit(N.ACT_OUT_STD_AFTER, layer.out_std, name)
            if not layer.in_is_data:
                s.emit(N.ACT_DEAD_AFTER, layer.in_dead, name)
    train_mode = r.after_train
    s.emit(N.TRIAL_TRAIN_BATCH_LOSS, train_mode.loss)


def stuck(ctx: Context) -> bool:
    """The baseline shows the symptom: worth finding out whether it can fit, and at which LR it would learn."""
    return ctx.untrainable is None and ctx.signals.get(N.SYMPTOM_KIND, "learns") != "learns"


def control_setup(ctx: Context) -> Setup:
    """A fresh setup at the LR the range test suggests (the user's when it found none): control experiments
    ask what the model and data can do, which a far-off LR would hide."""
    setup = ctx.setup()
    suggestion = ctx.signals.get(N.LR_RANGE_SUGGESTION)
    if suggestion is None or not ctx.spec.lr > 0:
        return setup
    return setup.but(spec=ctx.spec.scaled_lr(suggestion / ctx.spec.lr), history=(f"lr {suggestion:.1e}",))


def overfit_one_batch(ctx: Context) -> None:
    """Train on the first batch alone: a setup that cannot fit one batch cannot learn at all."""
    setup = control_setup(ctx).but(train=ctx.train[:1], held_out=ctx.train[0])
    r = ctx.trial(setup, "overfit one batch", steps=ctx.config.trial_steps)
    ctx.signals.emit(N.OVERFIT_GAIN, r.after_train.gain)
    ctx.signals.emit(N.OVERFIT_DIVERGED, r.diverged)
