"""Rules for the loss: softmax applied twice, a loss that does not fit the targets, silent broadcasting."""

from __future__ import annotations

import math
import re

from torchmedic.config import DiagnoseConfig
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.rules.pre.common import (
    class_like,
    confirm,
    fmt,
    module_ref,
    rows_reshaped,
    stuck,
    symptom_evidence,
    verification,
)
from torchmedic.rules.registry import rule
from torchmedic.signals import Signals
from torchmedic.task import ELEMENTWISE_LOSSES, REGRESSION_LOSSES, SOFTMAX_LOSSES


@rule("loss.double_softmax")
def double_softmax(s: Signals, c: DiagnoseConfig) -> Finding | None:
    if s.get("loss.kind") not in SOFTMAX_LOSSES or (s.get("task.num_classes") or 0) < 2:
        return None
    op = s.get("output.op")
    probabilities = s.get("output.rows_sum_to_one") or op == "softmax"
    log_probabilities = s.get("output.rows_log_normalized") or op == "log_softmax"
    if not (probabilities or log_probabilities):
        return None
    scope = s.get("output.op_scope", "")
    where = f" in {module_ref(scope)}" if scope else " at the end of forward"
    check = verification(s, "loss.double_softmax", c)
    if probabilities:
        classes = s.get("task.num_classes")
        floor = fmt(math.log(1 + (classes - 1) / math.e))
        summary = (
            f"the model ends with softmax{where} and the loss applies log_softmax again: it sees "
            f"probabilities in [0, 1] as logits, so its gradient is small and the loss cannot go below "
            f"{floor} even for perfect predictions."
        )
        prior = 0.8
    else:
        summary = (
            f"the model ends with log_softmax{where} and the loss applies log_softmax again: redundant "
            "(log_softmax is idempotent), but a sign that the output and the loss were not chosen together."
        )
        prior = 0.45
    return Finding(
        "loss.double_softmax",
        confirm(prior, check, structural=True) if probabilities else prior,
        summary,
        [
            Evidence("last op of forward", op or "?", "none (raw logits)", scope),
            Evidence("output rows sum to 1", bool(s.get("output.rows_sum_to_one")), "False"),
            Evidence("loss", s.get("loss.kind"), "applies log_softmax itself"),
            *symptom_evidence(s, c),
        ],
        Fix(
            "Return raw logits from forward: CrossEntropyLoss applies log_softmax itself. Apply softmax only when "
            "you need probabilities, outside the loss.",
            (
                f"# in forward: return the logits, without the final {op}\n"
                if not scope
                else f"{module_ref(scope)} = nn.Identity()  # drop the final {op}\n"
            )
            + "probabilities = model(x).softmax(dim=1)  # at inference only",
        ),
        check if probabilities else None,
    )


_OUT_OF_RANGE = re.compile(r"(out of bounds|out of range|index .* is out|Target -?\d+ is out)", re.I)


@rule("loss.task_mismatch")
def task_mismatch(s: Signals, c: DiagnoseConfig) -> Finding | None:
    error = s.get("loss.error")
    kind = s.get("loss.kind")
    low, high = s.get("target.min"), s.get("target.max")
    classes = s.get("task.num_classes")
    out_shape, target_shape = s.get("output.shape"), s.get("target.shape")
    evidence = [
        Evidence("loss", kind, "fits the targets"),
        Evidence("output shape", out_shape, ""),
        Evidence("target shape", target_shape, ""),
        Evidence("target range", [low, high], ""),
    ]
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
            fix = (
                Fix("Shift the labels to start at 0.", "y = y - 1  # labels 1..C -> 0..C-1")
                if one_based
                else Fix(
                    f"Give the last layer one output per class ({int(high) + 1}).",
                    f"{module_ref(s.get('model.head', ''))} = nn.Linear(in_features, {int(high) + 1})",
                )
            )
            return Finding("loss.task_mismatch", 0.93, f"the loss raises: {reason} ({error}).", evidence, fix)
        return Finding(
            "loss.task_mismatch",
            0.85,
            f"the loss raises on the model's output {out_shape} and the targets {target_shape}: {error}",
            evidence,
            Fix(
                "Match the loss to the task: CrossEntropyLoss takes (N, C) logits and (N,) class indices; "
                "BCEWithLogitsLoss takes logits and float 0/1 targets of the same shape; MSELoss takes float "
                "predictions and targets of the same shape.",
                "loss = nn.CrossEntropyLoss()(logits, y.long())  # classes\n"
                "loss = nn.BCEWithLogitsLoss()(logits.squeeze(1), y.float())  # binary",
            ),
        )
    if kind == "nll" and s.get("output.rows_sum_to_one"):
        scope = s.get("output.op_scope", "")
        return Finding(
            "loss.task_mismatch",
            0.8,
            "NLLLoss expects log-probabilities but the model outputs probabilities (rows sum to 1): the loss is "
            "-p[target], bounded in [-1, 0], with gradients that vanish as soon as p is small.",
            [*evidence, Evidence("output rows sum to 1", True, "False: log-probabilities are <= 0")],
            Fix(
                "End forward with log_softmax for NLLLoss, or return logits and use CrossEntropyLoss.",
                (f"{module_ref(scope)} = nn.LogSoftmax(dim=1)  # was softmax\n" if scope else "")
                + "# or: loss_fn = nn.CrossEntropyLoss() on raw logits",
            ),
        )
    if kind in ("bce", "bce_logits") and high is not None and high > 1:
        return Finding(
            "loss.task_mismatch",
            0.9,
            f"{kind} is a binary loss but the targets go up to {fmt(high)}: class indices of a multi-class problem.",
            evidence,
            Fix(
                f"Use CrossEntropyLoss with one output per class ({int(high) + 1}).",
                f"loss_fn = nn.CrossEntropyLoss()\n{module_ref(s.get('model.head', ''))} = "
                f"nn.Linear(in_features, {int(high) + 1})",
            ),
        )
    present = s.get("target.classes_present", 0)
    width = (out_shape or [0, 0])[1] if len(out_shape or []) >= 2 else 1
    one_per_class = width == present and low == 0  # a classification head (one output per class) under MSE
    if kind in REGRESSION_LOSSES and class_like(s, c) and present >= 3 and (one_per_class or stuck(s, c)):
        return Finding(
            "loss.task_mismatch",
            0.85 if one_per_class else 0.6,
            f"{kind} regresses {present} integer class labels ({fmt(low)}..{fmt(high)}) as numbers: the model "
            "is pulled to their mean, and class 7 counts as 'closer' to 8 than to 1.",
            evidence + symptom_evidence(s, c),
            Fix(
                "Treat class labels as classes: one output per class and CrossEntropyLoss.",
                f"loss_fn = nn.CrossEntropyLoss()\n{module_ref(s.get('model.head', ''))} = "
                f"nn.Linear(in_features, {int(high or 0) + 1})\nloss = loss_fn(model(x), y.long())",
            ),
        )
    return None


@rule("loss.shape_broadcast")
def shape_broadcast(s: Signals, c: DiagnoseConfig) -> Finding | None:
    if not s.get("loss.broadcasts"):
        return None
    warned = s.get("loss.broadcast_warning")
    kind = s.get("loss.kind")
    if kind not in ELEMENTWISE_LOSSES and not warned:
        return None
    out_shape, target_shape, shape = s.get("output.shape"), s.get("target.shape"), s.get("loss.broadcast_shape")
    check = verification(s, "loss.shape_broadcast", c)
    return Finding(
        "loss.shape_broadcast",
        confirm(0.9, check, structural=True),
        f"the loss compares output {out_shape} with target {target_shape}, which broadcast to {shape}: every "
        "prediction is scored against every target, and the optimum is the mean of the batch for everyone.",
        [
            Evidence("output shape", out_shape, f"{target_shape}"),
            Evidence("broadcast shape", shape, f"{out_shape}"),
            *([Evidence("torch warning", warned, "none")] if warned else []),
            *symptom_evidence(s, c),
        ],
        Fix("Make the shapes equal before the loss.", "loss = loss_fn(output.squeeze(1), y)  # or y.unsqueeze(1)"),
        check,
    )
