"""Rules for the loss: softmax applied twice, a loss that does not fit the targets, silent broadcasting."""

from __future__ import annotations

import math
import re

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.fixes.loss import relabeling
from torchmedic.lines import module_ref
from torchmedic.rules.pre.common import STRUCTURAL, class_like, confirm, fmt, rows_reshaped, stuck, symptom_evidence
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.task import BINARY_LOSSES, ELEMENTWISE_LOSSES, REGRESSION_LOSSES, SOFTMAX_LOSSES
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

DOUBLE_SOFTMAX = 0.8  # softmax before a loss that applies log_softmax: wrong, though a model can still learn a bit
LOG_SOFTMAX_TWICE = 0.45  # log_softmax before it: harmless (idempotent), only a sign the two were not chosen together
RAISES_OUT_OF_RANGE = 0.93  # the loss raises because a label is not a class id of the head
RAISES = 0.85  # the loss raises on these outputs and targets for another reason
NLL_ON_PROBABILITIES = 0.8  # NLLLoss on rows that sum to 1: bounded in [-1, 0], vanishing gradients
BINARY_ON_INDICES = 0.9  # a binary loss on targets above 1
REGRESSION_ON_HEAD = 0.85  # a regression loss on class indices with one output per class
REGRESSION_ON_INDICES = 0.6  # a regression loss on class indices with one output, and the model does not learn

_OUT_OF_RANGE = re.compile(r"(out of bounds|out of range|index .* is out|Target -?\d+ is out)", re.I)


@rule("loss.double_softmax")
def double_softmax(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """CrossEntropyLoss applies log_softmax itself: fed probabilities in [0, 1] it sees nearly equal logits, so its
    gradient is small and the loss cannot go below log(1 + (C - 1) / e) even for perfect predictions."""
    if s.get(N.LOSS_KIND) not in SOFTMAX_LOSSES or (s.get(N.TASK_NUM_CLASSES) or 0) < 2:
        return None
    op = s.get(N.OUTPUT_OP)
    probabilities = s.get(N.OUTPUT_ROWS_SUM_TO_ONE) or op == "softmax"
    log_probabilities = s.get(N.OUTPUT_ROWS_LOG_NORMALIZED) or op == "log_softmax"
    if not (probabilities or log_probabilities):
        return None
    scope = s.get(N.OUTPUT_OP_SCOPE, "")
    where = f" in {module_ref(scope)}" if scope else " at the end of forward"
    check = v.get("loss.double_softmax")
    if probabilities:
        classes = s.get(N.TASK_NUM_CLASSES)
        floor = fmt(math.log(1 + (classes - 1) / math.e))
        summary = (
            f"the model ends with softmax{where} and the loss applies log_softmax again: it sees "
            f"probabilities in [0, 1] as logits, so its gradient is small and the loss cannot go below "
            f"{floor} even for perfect predictions."
        )
    else:
        summary = (
            f"the model ends with log_softmax{where} and the loss applies log_softmax again: redundant "
            "(log_softmax is idempotent), but a sign that the output and the loss were not chosen together."
        )
    return Claim(
        confirm(DOUBLE_SOFTMAX, check, structural=True) if probabilities else LOG_SOFTMAX_TWICE,
        summary,
        [
            Evidence("last op of forward", op or "?", "none (raw logits)", scope),
            Evidence("output rows sum to 1", bool(s.get(N.OUTPUT_ROWS_SUM_TO_ONE)), "False"),
            Evidence("loss", s.get(N.LOSS_KIND), "applies log_softmax itself"),
            *symptom_evidence(v, t),
        ],
        "Return raw logits from forward: CrossEntropyLoss applies log_softmax itself. Apply softmax only when "
        "you need probabilities, outside the loss.",
        verification=check if probabilities else None,
    )


@rule("loss.task_mismatch")
def task_mismatch(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """A loss that does not fit the targets trains the wrong thing or raises: class indices regressed as numbers,
    a binary loss on multi-class indices, labels outside the head's class ids (1-based, a mask stored as 0/255)."""
    error = s.get(N.LOSS_ERROR)
    kind = s.get(N.LOSS_KIND)
    low, high = s.get(N.TARGET_MIN), s.get(N.TARGET_MAX)
    classes = s.get(N.TASK_NUM_CLASSES)
    out_shape, target_shape = s.get(N.OUTPUT_SHAPE), s.get(N.TARGET_SHAPE)
    check = v.get("loss.task_mismatch")
    evidence = [
        Evidence("loss", kind, "fits the targets"),
        Evidence("output shape", out_shape, ""),
        Evidence("target shape", target_shape, ""),
        Evidence("target range", [low, high], ""),
    ]
    relabel = relabeling(s)
    if relabel is not None and (error or kind in BINARY_LOSSES or stuck(v)):
        shown = ", ".join(fmt(x) for x in relabel[:6])
        return Claim(
            confirm(RAISES_OUT_OF_RANGE, check, structural=True),
            f"the targets take the values {shown}, not the class ids 0..{len(relabel) - 1} the {kind} loss "
            f"expects{f' (it raises: {error})' if error else ''}: a mask or label stored in other units.",
            [*evidence, Evidence("distinct target values", relabel, f"0..{len(relabel) - 1}")],
            "Map the target values to class ids (a 0/255 mask divided by 255, labels 1..C shifted to 0..C-1).",
            verification=check,
        )
    if error and rows_reshaped(s):
        return None  # the model returns the wrong number of rows: arch.batch_mixing explains the error
    if error:
        if _OUT_OF_RANGE.search(error) and classes is not None and high is not None:
            one_based = low == 1 and int(high) == classes
            reason = (
                f"labels run from {fmt(low)} to {fmt(high)} (1-based) but class indices must be 0..{classes - 1}"
                if one_based
                else f"labels go up to {fmt(high)} but the model has {classes} outputs (classes 0..{classes - 1})"
            )
            advice = "Shift the labels to start at 0." if one_based else (
                f"Give the last layer one output per class ({int(high) + 1})."
            )  # fmt: skip
            return Claim(RAISES_OUT_OF_RANGE, f"the loss raises: {reason} ({error}).", evidence, advice)
        return Claim(
            RAISES,
            f"the loss raises on the model's output {out_shape} and the targets {target_shape}: {error}",
            evidence,
            "Match the loss to the task: CrossEntropyLoss takes (N, C) logits and (N,) class indices; "
            "BCEWithLogitsLoss takes logits and float 0/1 targets of the same shape; MSELoss takes float "
            "predictions and targets of the same shape.",
        )
    over_batch = 0 in (s.get(N.MODEL_SOFTMAX_DIMS) or [])  # rows normalized over the batch: arch.batch_mixing
    raw = kind == "nll" and not s.get(N.OUTPUT_ROWS_SUM_TO_ONE) and s.get(N.OUTPUT_ROWS_LOG_NORMALIZED) is False
    unbounded = s.get(N.LOSS_UNBOUNDED) and not s.get(N.OUTPUT_ROWS_LOG_NORMALIZED)
    if not over_batch and (raw or unbounded):
        return Claim(
            confirm(NLL_ON_PROBABILITIES, check, structural=True),
            "the loss takes log-probabilities but the model outputs raw scores: it is -score[target], unbounded below "
            "(a certain prediction costs far below 0), so training pushes the scores to infinity instead of "
            "learning the classes.",
            [*evidence, Evidence("output rows are log-probabilities", False, "True (log_softmax at the end)")],
            "End forward with log_softmax for NLLLoss, or use CrossEntropyLoss on the raw scores.",
            verification=check,
        )
    if kind == "nll" and s.get(N.OUTPUT_ROWS_SUM_TO_ONE):
        return Claim(
            confirm(NLL_ON_PROBABILITIES, check, structural=True),
            "NLLLoss expects log-probabilities but the model outputs probabilities (rows sum to 1): the loss is "
            "-p[target], bounded in [-1, 0], with gradients that vanish as soon as p is small.",
            [*evidence, Evidence("output rows sum to 1", True, "False: log-probabilities are <= 0")],
            "End forward with log_softmax for NLLLoss, or return logits and use CrossEntropyLoss.",
            verification=check,
        )
    if (kind in BINARY_LOSSES or s.get(N.LOSS_READS)) and high is not None and high > 1:
        return Claim(
            confirm(BINARY_ON_INDICES, check, structural=True),
            f"{kind} is a binary loss but the targets go up to {fmt(high)}: class indices of a multi-class problem.",
            evidence,
            f"Use CrossEntropyLoss with one output per class ({int(high) + 1}).",
            verification=check,
        )
    present = s.get(N.TARGET_CLASSES_PRESENT, 0)
    width = (out_shape or [0, 0])[1] if len(out_shape or []) >= 2 else 1
    one_per_class = width == present and low == 0  # a classification head (one output per class) under MSE
    if kind in REGRESSION_LOSSES and class_like(s, t) and present >= 3 and (one_per_class or stuck(v)):
        return Claim(
            confirm(REGRESSION_ON_HEAD if one_per_class else REGRESSION_ON_INDICES, check),
            f"{kind} regresses {present} integer class labels ({fmt(low)}..{fmt(high)}) as numbers: the model "
            "is pulled to their mean, and class 7 counts as 'closer' to 8 than to 1.",
            evidence + symptom_evidence(v, t),
            "Treat class labels as classes: one output per class and CrossEntropyLoss.",
            verification=check,
        )
    return None


@rule("loss.shape_broadcast")
def shape_broadcast(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """An elementwise loss on an (N, 1) output and an (N,) target broadcasts to (N, N): every prediction is scored
    against every target, so the optimum is the batch mean for everyone."""
    if not s.get(N.LOSS_BROADCASTS):
        return None
    warned = s.get(N.LOSS_BROADCAST_WARNING)
    kind = s.get(N.LOSS_KIND)
    if kind not in ELEMENTWISE_LOSSES and not warned:
        return None
    out_shape, target_shape, shape = s.get(N.OUTPUT_SHAPE), s.get(N.TARGET_SHAPE), s.get(N.LOSS_BROADCAST_SHAPE)
    inner = s.get(N.LOSS_INNER_SHAPE)
    if inner is not None:
        out_shape = f"{out_shape} (reshaped to {inner} inside the loss)"
    check = v.get("loss.shape_broadcast")
    return Claim(
        confirm(STRUCTURAL, check, structural=True),
        f"the loss compares output {out_shape} with target {target_shape}, which broadcast to {shape}: every "
        "prediction is scored against every target, and the optimum is the mean of the batch for everyone.",
        [
            Evidence("output shape", out_shape, f"{target_shape}"),
            Evidence("broadcast shape", shape, f"{out_shape}"),
            *([Evidence("torch warning", warned, "none")] if warned else []),
            *symptom_evidence(v, t),
        ],
        "Make the shapes equal before the loss.",
        verification=check,
    )
