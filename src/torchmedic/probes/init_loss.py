"""The loss at initialization against ln C and the label entropy, and the shapes the loss sees."""

from __future__ import annotations

import json
import math
import re
import warnings
from typing import Any

import torch

from torchmedic import signal_names as N
from torchmedic.batch import primary_output, replace_primary
from torchmedic.context import Context
from torchmedic.floor import constant_floor
from torchmedic.metrics import loss_value
from torchmedic.probes.registry import probe
from torchmedic.signals import Signals
from torchmedic.task import binary_reading


@probe("init_loss", order=30, forwards=1)
def init_loss(ctx: Context) -> None:
    s, out = ctx.signals, ctx.output
    targets = ctx.train[0].loss_targets
    s.emit(N.OUTPUT_SHAPE, list(out.shape))
    s.emit(N.LOSS_KIND, ctx.task.loss_kind)
    s.emit(N.TASK_KIND, ctx.task.kind)
    if ctx.task.num_classes is not None:
        s.emit(N.TASK_NUM_CLASSES, ctx.task.num_classes)
    if out.shape != targets.shape:
        try:
            broadcast = torch.broadcast_shapes(out.shape, targets.shape)
            s.emit(N.LOSS_BROADCAST_SHAPE, list(broadcast))
            s.emit(N.LOSS_BROADCASTS, broadcast.numel() > max(out.numel(), targets.numel()))
        except RuntimeError:
            s.emit(N.LOSS_BROADCASTS, False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.no_grad():
                loss = loss_value(ctx.loss_fn, ctx.outputs, targets)
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            s.emit(N.LOSS_ERROR, f"{type(exc).__name__}: {first_line}")
            ctx.untrainable = "the loss raises on the model's output"
            return
    messages = [str(w.message) for w in caught if "size" in str(w.message) or "broadcast" in str(w.message)]
    if messages:
        s.emit(N.LOSS_BROADCAST_WARNING, messages[0])
        inner = inner_shapes(messages[0])
        if inner is not None and not s.get(N.LOSS_BROADCASTS):
            _broadcasts_inside(s, *inner)
    s.emit(N.LOSS_INIT, float(loss))
    reading = binary_reading(ctx.loss_fn, ctx.outputs, targets)
    if reading is not None:
        s.emit(N.LOSS_READS, reading)
    if ctx.task.kind == "multiclass":
        s.emit(N.LOSS_UNBOUNDED, unbounded_below(ctx.loss_fn, ctx.outputs, targets))
    graph = _loss_has_graph(ctx)
    if graph is not None:
        s.emit(N.LOSS_REQUIRES_GRAD_GRAPH, graph)
    if ctx.task.kind == "multiclass" and ctx.task.num_classes and ctx.task.num_classes > 1:
        s.emit(N.LOSS_LN_C, math.log(ctx.task.num_classes))
    try:
        s.emit(N.LOSS_FLOOR, constant_floor(ctx.loss_fn, ctx.outputs, targets, ctx.task))
    except Exception:
        ctx.notes.append("the loss of a constant output could not be computed")


CONFIDENT = 1e3  # a score this far above the others is a certain prediction: a bounded loss is ~0 there


def unbounded_below(loss_fn: Any, outputs: Any, targets: torch.Tensor) -> bool:
    """A class loss that keeps falling as the target's score grows: cross-entropy is ~0 for a certain right
    prediction, a loss on raw scores (NLL without log_softmax, -mean(score[y])) goes to -infinity. The certain
    prediction is written in the model's own output space (raw scores, probabilities or log-probabilities): a loss
    that takes the log of softmax outputs is bounded where those outputs can go."""
    out = primary_output(outputs)
    if out is None or out.dim() < 2 or targets.is_floating_point() or targets.shape != out.shape[:1] + out.shape[2:]:
        return False
    target = targets.long().clamp(0, out.shape[1] - 1).unsqueeze(1)
    with torch.no_grad():
        ones = torch.ones(out.shape[:1] + out.shape[2:], device=out.device)
        if bool((out >= 0).all()) and torch.allclose(out.float().sum(1), ones, atol=1e-3):
            certain = torch.zeros_like(out).scatter_(1, target, 1.0)  # probabilities: one-hot is the most certain
        elif bool((out <= 0).all()) and torch.allclose(out.float().exp().sum(1), ones, atol=1e-3):
            certain = torch.full_like(out, -CONFIDENT).scatter_(1, target, 0.0)  # log-probabilities
        else:
            certain = torch.zeros_like(out).scatter_(1, target, CONFIDENT)  # raw scores
        try:
            value = float(loss_value(loss_fn, replace_primary(outputs, certain), targets))
        except Exception:
            return False
    return value < -1.0


SIZES = re.compile(r"target size \(torch\.Size\((\[[\d, ]*\])\)\).*input size \(torch\.Size\((\[[\d, ]*\])\)\)")


def inner_shapes(message: str) -> tuple[list[int], list[int]] | None:
    """(input, target) shapes that torch's size-mismatch warning names: what the loss compared inside, after any
    squeeze or view of its own."""
    found = SIZES.search(message)
    if found is None:
        return None
    target, given = (json.loads(group) for group in found.groups())
    return given, target


def _broadcasts_inside(s: Signals, given: list[int], target: list[int]) -> None:
    """The loss itself reshaped the output (a head that squeezes its logits) and then broadcast it to the target."""
    try:
        broadcast = torch.broadcast_shapes(torch.Size(given), torch.Size(target))
    except RuntimeError:
        return
    if broadcast.numel() > max(math.prod(given), math.prod(target)):
        s.emit(N.LOSS_BROADCAST_SHAPE, list(broadcast))
        s.emit(N.LOSS_BROADCASTS, True)
        s.emit(N.LOSS_INNER_SHAPE, given)


def _loss_has_graph(ctx: Context) -> bool | None:
    """Whether backward from the loss reaches anything (False when the graph is cut inside the model or loss;
    None when the training-mode forward itself fails)."""
    model = ctx.copy()
    batch = ctx.train[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the same warnings as the loss at init, already recorded there
            loss = loss_value(ctx.loss_fn, batch.run(model), batch.loss_targets)
    except Exception:
        return None
    return bool(loss.requires_grad)
