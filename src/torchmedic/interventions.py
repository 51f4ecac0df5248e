"""Candidate fixes applied to a copy: each returns the trial setup with one cause removed, or None if it has
no fix to try. diagnose() re-runs the trial with it and the rule reads whether the symptom went away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch, concat
from torchmedic.clone import clone_model
from torchmedic.context import Context
from torchmedic.remedies.lr_finder import range_test
from torchmedic.remedies.weight_init import init_weights
from torchmedic.tracing import WithoutOp
from torchmedic.trial import TrialSetup

FixFn = Callable[[Context, TrialSetup], TrialSetup | None]


@dataclass(frozen=True)
class Intervention:
    cause: str
    fn: FixFn
    metric: str  # which trial metric decides: "held_out_gain" or "balanced_accuracy"


INTERVENTIONS: dict[str, Intervention] = {}


def intervention(cause: str, *, metric: str = "held_out_gain") -> Callable[[FixFn], FixFn]:
    def register(fn: FixFn) -> FixFn:
        INTERVENTIONS[cause] = Intervention(cause, fn, metric)
        return fn

    return register


def _reinit(ctx: Context, setup: TrialSetup) -> TrialSetup:
    model = setup.model
    init_weights(model, "kaiming", batch=ctx.train[0], generator=torch.Generator().manual_seed(ctx.config.seed))
    return setup.fixed("Kaiming/Xavier re-init", model=model)


for _cause in ("init.too_small", "init.too_large", "init.symmetric", "init.dead_units"):
    intervention(_cause)(_reinit)


def suggested_lr(ctx: Context, setup: TrialSetup) -> float | None:
    """The LR range test's suggestion for this setup: measured anew when other fixes changed it (a rescaled input
    or a removed softmax moves the good LR by orders of magnitude), else the one diagnose measured."""
    if not setup.label:
        return ctx.signals.get("lr_range.suggestion")
    batches = [setup.prepare(b) for b in setup.train]
    result = range_test(
        clone_model(setup.model), batches, setup.loss_fn, setup.spec, num_iter=ctx.config.lr_range_steps
    )
    return result.suggestion


def _with_lr(ctx: Context, setup: TrialSetup, target: float) -> TrialSetup:
    lr = ctx.spec.lr
    return setup.fixed(f"lr {lr:.1e} -> {target:.1e}", spec=setup.spec.scaled_lr(target / lr))


@intervention("lr.too_high")
def lower_lr(ctx: Context, setup: TrialSetup) -> TrialSetup:
    lr, suggestion = ctx.spec.lr, suggested_lr(ctx, setup)
    return _with_lr(ctx, setup, suggestion if suggestion is not None and suggestion < lr / 3 else lr / 10)


@intervention("lr.too_low")
def raise_lr(ctx: Context, setup: TrialSetup) -> TrialSetup:
    lr, suggestion = ctx.spec.lr, suggested_lr(ctx, setup)
    if suggestion is not None and suggestion > lr * 3:
        return _with_lr(ctx, setup, suggestion)
    usual = ctx.config.usual_lr(ctx.spec.name)
    return _with_lr(ctx, setup, max(lr * 100, usual))  # no usable range test: at least the usual starting LR


@intervention("data.unnormalized")
def standardize_inputs(ctx: Context, setup: TrialSetup) -> TrialSetup | None:
    means, stds = ctx.signals.get("input.channel_mean"), ctx.signals.get("input.channel_std")
    if not means or not stds:
        return None
    x = ctx.train[0].first_input
    shape = [1, len(means)] + [1] * (x.dim() - 2) if x.dim() >= 2 else [len(means)]
    mean = torch.tensor(means, dtype=x.dtype, device=x.device).reshape(shape)
    std = torch.tensor(stds, dtype=x.dtype, device=x.device).clamp_min(1e-8).reshape(shape)

    def prepare(batch: Batch) -> Batch:
        batch = setup.prepare(batch)
        x = batch.first_input
        if not x.is_floating_point():
            return batch
        z = (x - mean) / std
        return batch.with_inputs((z, *batch.inputs[1:]) if isinstance(batch.inputs, tuple) else z)

    return setup.fixed("standardized inputs", prepare=prepare)


@intervention("data.target_scale")
def standardize_targets(ctx: Context, setup: TrialSetup) -> TrialSetup | None:
    mean, std = ctx.signals.get("target.mean"), ctx.signals.get("target.std")
    if mean is None or not std:
        return None

    def prepare(batch: Batch) -> Batch:
        batch = setup.prepare(batch)
        return batch if batch.targets is None else batch.with_targets((batch.targets - mean) / std)

    return setup.fixed("standardized targets", prepare=prepare)


def _samples(ctx: Context) -> Batch | None:
    try:
        return concat(ctx.audit)
    except (RuntimeError, TypeError):
        return None


def _rebatch(ctx: Context, order: torch.Tensor, everything: Batch) -> tuple[Batch, ...]:
    size = max(2, min(ctx.train[0].size, ctx.config.max_trial_batch))
    chunks = [order[i : i + size] for i in range(0, min(len(order), size * len(ctx.train)), size)]
    return tuple(everything.select(chunk).to(ctx.device) for chunk in chunks if len(chunk) >= 2)


@intervention("data.class_imbalance", metric="balanced_accuracy")
def balanced_batches(ctx: Context, setup: TrialSetup) -> TrialSetup | None:
    everything = _samples(ctx)
    if everything is None or everything.targets is None:
        return None
    labels = everything.targets.flatten().round().long() if everything.targets.dim() <= 2 else None
    if labels is None or labels.shape[0] != everything.size:
        return None
    counts = torch.bincount(labels.clamp_min(0))
    weights = (1.0 / counts.float().clamp_min(1))[labels.clamp_min(0)]
    generator = torch.Generator().manual_seed(ctx.config.seed)
    total = ctx.train[0].size * len(ctx.train)
    order = torch.multinomial(weights, total, replacement=True, generator=generator)
    return setup.fixed("class-balanced batches", train=_rebatch(ctx, order, everything))


@intervention("data.unshuffled")
def shuffled_batches(ctx: Context, setup: TrialSetup) -> TrialSetup | None:
    everything = _samples(ctx)
    if everything is None:
        return None
    generator = torch.Generator().manual_seed(ctx.config.seed)
    order = torch.randperm(everything.size, generator=generator)
    return setup.fixed("shuffled batches", train=_rebatch(ctx, order, everything))


@intervention("mode.bn_small_batch")
def larger_batches(ctx: Context, setup: TrialSetup) -> TrialSetup | None:
    everything = _samples(ctx)
    if everything is None or everything.size < 16:
        return None
    generator = torch.Generator().manual_seed(ctx.config.seed)
    order = torch.randperm(everything.size, generator=generator)
    size = min(32, everything.size // 2)
    train = tuple(everything.select(order[i * size : (i + 1) * size]).to(ctx.device) for i in range(len(ctx.train)))
    return setup.fixed(f"batches of {size}", train=tuple(b for b in train if b.size >= 2))


def _without(op_signal: str, what: str) -> FixFn:
    def fix(ctx: Context, setup: TrialSetup) -> TrialSetup | None:
        name = ctx.signals.get(op_signal)
        ordinal = ctx.signals.get(op_signal + "_ordinal")
        if name is None or ordinal is None:
            return None
        return setup.fixed(f"final {name} removed", model=WithoutOp(setup.model, name, ordinal))

    fix.__doc__ = f"Remove the {what} from the model's forward."
    return fix


intervention("loss.double_softmax")(_without("output.op", "final softmax"))
intervention("arch.output_activation")(_without("output.logit_op", "activation on the logits"))


@intervention("loss.shape_broadcast")
def matching_shapes(ctx: Context, setup: TrialSetup) -> TrialSetup:
    loss_fn = setup.loss_fn

    def reshaped(outputs: Any, targets: torch.Tensor) -> Any:
        out = outputs if isinstance(outputs, torch.Tensor) else None
        if out is not None and out.numel() == targets.numel():
            targets = targets.reshape(out.shape)
        return loss_fn(outputs, targets)

    return setup.fixed("targets reshaped to the output's shape", loss_fn=reshaped)


@intervention("optim.not_updating")
def train_everything(ctx: Context, setup: TrialSetup) -> TrialSetup | None:
    s = ctx.signals
    if not (s.get("optim.unheld_trainable") or s.get("model.frozen") or not s.get("optim.held")):
        return None  # every parameter already trains: the cause is elsewhere (a cut graph), no fix to try here
    model = setup.model
    for p in model.parameters():
        p.requires_grad_(True)
    names = tuple(n for n, _ in model.named_parameters())
    return setup.fixed(
        "every parameter trainable and in the optimizer",
        model=model,
        spec=setup.spec.over(names),
    )


@intervention("optim.over_regularized")
def less_regularization(ctx: Context, setup: TrialSetup) -> TrialSetup:
    model = setup.model
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p >= ctx.config.max_dropout:
            module.p = 0.1
    return setup.fixed("weight decay 0, dropout 0.1", model=model, spec=setup.spec.with_hyper(weight_decay=0.0))
