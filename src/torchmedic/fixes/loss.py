"""Fixes for a loss that does not fit the targets: class labels fed to the wrong loss or head, shapes that
broadcast."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from torchmedic import signal_names as N
from torchmedic.fixes.registry import Applied, Outcome, Refused, fix
from torchmedic.lines import module_ref
from torchmedic.setup import Setup
from torchmedic.signals import Signals
from torchmedic.task import BINARY_LOSSES, CLASS_LOSSES, MAX_CLASSES, loss_kind_by_name
from torchmedic.wrappers import (
    IndexTargets,
    LogOfProbabilities,
    LogSoftmaxed,
    MatchedTargets,
    RelabeledTargets,
    ReshapedTargets,
    innermost_loss,
    with_innermost,
)

if TYPE_CHECKING:
    from torchmedic.context import Context


def _wider_head(ctx: Context, setup: Setup, classes: int) -> tuple[str, str] | str:
    """Replace the final Linear layer with one that has `classes` outputs; (what, code), or why it cannot."""
    head = ctx.signals.get(N.MODEL_HEAD)
    layer = setup.inner.get_submodule(head) if head else None
    if not isinstance(layer, nn.Linear):
        return f"the final layer ({type(layer).__name__ if layer is not None else 'not found'}) is not an nn.Linear"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.config.seed)
        wider = nn.Linear(layer.in_features, classes, bias=layer.bias is not None)
    setup.inner.set_submodule(head, wider.to(device=layer.weight.device, dtype=layer.weight.dtype))
    ref = module_ref(head)
    return (
        f"{ref} replaced with nn.Linear({layer.in_features}, {classes}) (had {layer.out_features} outputs)",
        f"{ref} = nn.Linear({layer.in_features}, {classes})  # one output per class index 0..{classes - 1}",
    )


def _class_labels(ctx: Context) -> torch.Tensor | None:
    """The labels read, when they are class indices: one integer >= 0 per sample, at most MAX_CLASSES of them."""
    targets = [b.targets for b in ctx.audit if b.targets is not None]
    if not targets:
        return None
    labels = torch.cat([t.detach().flatten().cpu() for t in targets])
    if labels.is_floating_point():
        if not bool(torch.isfinite(labels).all()) or not bool((labels == labels.round()).all()):
            return None
        labels = labels.long()
    per_sample = labels.numel() == sum(int(t.shape[0]) for t in targets if t.dim() > 0)
    if not per_sample or labels.numel() == 0 or int(labels.min()) < 0 or int(labels.max()) >= MAX_CLASSES:
        return None
    return labels


GENERIC_CODE = (
    "loss = nn.CrossEntropyLoss()(logits, y.long())  # classes: (N, C) logits, (N,) indices\n"
    "loss = nn.BCEWithLogitsLoss()(logits.squeeze(1), y.float())  # binary: one logit, float 0/1 targets"
)


def relabeling(s: Signals) -> list[float] | None:
    """The distinct target values when they are few but not the class ids the loss expects (a mask stored as
    0/255, labels 1..C for C outputs): the targets need mapping, not a wider head."""
    values = s.get(N.TARGET_VALUES)
    classes = s.get(N.TASK_NUM_CLASSES) or 0
    if not values or len(values) < 2:
        return None
    if s.get(N.LOSS_KIND) in BINARY_LOSSES:
        return values if len(values) == 2 and values != [0.0, 1.0] else None
    return values if classes and max(values) >= classes and len(values) <= classes else None


@fix("loss.task_mismatch", stage="loss")
def class_loss(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Targets mapped to the class ids the loss expects; or class labels trained as classes: one output per class
    index, and cross-entropy on long indices."""
    s = ctx.signals
    values = relabeling(s)
    if values is not None:
        binary = s.get(N.LOSS_KIND) in BINARY_LOSSES
        shown = ", ".join(f"{v:g}" for v in values[:6])
        if values == [float(v) for v in range(1, len(values) + 1)] and not binary:
            code = "y = y - 1  # labels 1..C -> 0..C-1"
        elif len(values) == 2:
            code = f"mask = (mask > {values[0]:g}).float()  # {values[0]:g}/{values[1]:g} -> 0/1" + (
                "" if binary else ".long()  # class ids for CrossEntropyLoss"
            )
        else:
            code = f"lookup = {{{', '.join(f'{v:g}: {i}' for i, v in enumerate(values))}}}  # stored value -> class id"
        return Applied(
            setup.but(loss_fn=RelabeledTargets(setup.loss_fn, values, binary)),
            f"targets {shown} mapped to class ids 0..{len(values) - 1}",
            code,
        )
    labels, shape = _class_labels(ctx), s.get(N.OUTPUT_SHAPE) or []
    if labels is None or len(shape) != 2:
        error = s.get(N.LOSS_ERROR)
        return Refused(
            "the targets are not class indices" + (f" and the loss raises: {error}" if error else ""), code=GENERIC_CODE
        )
    low, high = int(labels.min()), int(labels.max())
    classes, width = high + 1, int(shape[1])
    kind = loss_kind_by_name(innermost_loss(setup.loss_fn)) or s.get(N.LOSS_KIND)
    raw_scores = (kind == "nll" or s.get(N.LOSS_UNBOUNDED)) and not s.get(N.OUTPUT_ROWS_LOG_NORMALIZED)
    if raw_scores:
        return _log_probabilities(setup, bool(s.get(N.OUTPUT_ROWS_SUM_TO_ONE)))
    whats, codes = [], []
    if width < classes:
        head = _wider_head(ctx, setup, classes)
        if isinstance(head, str):
            return Refused(f"labels go up to {high} but the model has {width} outputs, and {head}", code=GENERIC_CODE)
        whats.append(head[0])
        note = f"  # labels run {low}..{high}: or keep {width} outputs and train on y - 1" if low == 1 else ""
        codes.append(head[1] + note)
    loss = setup.loss_fn
    if kind not in CLASS_LOSSES:
        indices = s.get(N.TARGET_DTYPE, "").startswith("int") and len(s.get(N.TARGET_SHAPE) or []) == 1
        loss = nn.CrossEntropyLoss() if indices else IndexTargets(nn.CrossEntropyLoss())
        whats.append(f"{kind} loss replaced with CrossEntropyLoss" + ("" if indices else " on long class indices"))
        codes.append("loss_fn = nn.CrossEntropyLoss()")
        if not indices:
            codes.append("loss = loss_fn(model(x), y.long().reshape(-1))  # class indices, shape [N]")
    if not whats:
        return Refused(f"the labels ({low}..{high}) fit the {width} outputs and the {kind} loss", code=GENERIC_CODE)
    return Applied(setup.but(loss_fn=loss), "; ".join(whats), "\n".join(codes))


def _log_probabilities(setup: Setup, probabilities: bool) -> Outcome:
    """A loss on log-probabilities fed what it needs: the log of probabilities, or log_softmax of raw scores."""
    inner = innermost_loss(setup.loss_fn)
    if probabilities:
        return Applied(
            setup.but(loss_fn=with_innermost(setup.loss_fn, LogOfProbabilities(inner))),
            "the loss fed the log of the model's probabilities",
            "loss = loss_fn(torch.log(model(x).clamp_min(1e-12)), y)  # or end forward with log_softmax",
        )
    return Applied(
        setup.but(loss_fn=with_innermost(setup.loss_fn, LogSoftmaxed(inner))),
        "the loss fed log_softmax of the model's raw scores (over the classes, dim 1)",
        "loss = loss_fn(F.log_softmax(model(x), dim=1), y)  # or nn.CrossEntropyLoss() on the raw scores",
    )


@fix("loss.shape_broadcast", stage="loss")
def matching_shapes(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Targets reshaped to the output's shape before the loss, so nothing broadcasts to [N, N]."""
    out, target = ctx.signals.get(N.OUTPUT_SHAPE), ctx.signals.get(N.TARGET_SHAPE)
    if not ctx.signals.get(N.LOSS_BROADCASTS):
        return Refused(f"the output {out} and the target {target} do not broadcast to a larger shape", needless=True)
    inner = ctx.signals.get(N.LOSS_INNER_SHAPE)
    if inner is not None:
        return Applied(
            setup.but(loss_fn=ReshapedTargets(setup.loss_fn, tuple(inner[1:]))),
            f"targets reshaped to the shape the loss gives the output inside ({target} -> {inner})",
            f"loss = loss_fn(out, y.view({', '.join(['-1', *map(str, inner[1:])])}))  # the loss reshapes the output "
            f"to {inner}: give it targets of that shape",
        )
    return Applied(
        setup.but(loss_fn=MatchedTargets(setup.loss_fn)),
        f"targets reshaped to the output's shape inside the loss ({target} -> {out})",
        "loss = loss_fn(out, y.view_as(out))  # same shape: no broadcasting to [N, N]",
    )
