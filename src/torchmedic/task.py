"""What the setup is trying to learn, read from the loss, the targets and the model's output."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from torchmedic.batch import primary_output, replace_primary

MAX_CLASSES = 1000  # integer targets with more distinct values are treated as numbers, not classes

# Loss kinds by class and by function; anything else is identified by how it behaves.
_LOSS_CLASSES: tuple[tuple[type, str], ...] = (
    (nn.CrossEntropyLoss, "cross_entropy"),
    (nn.NLLLoss, "nll"),
    (nn.BCEWithLogitsLoss, "bce_logits"),
    (nn.BCELoss, "bce"),
    (nn.MSELoss, "mse"),
    (nn.L1Loss, "l1"),
    (nn.SmoothL1Loss, "huber"),
    (nn.HuberLoss, "huber"),
    (nn.KLDivLoss, "kl"),
    (nn.MultiLabelSoftMarginLoss, "bce_logits"),
)
_LOSS_FUNCTIONS: dict[Callable[..., Any], str] = {
    F.cross_entropy: "cross_entropy",
    F.nll_loss: "nll",
    F.binary_cross_entropy_with_logits: "bce_logits",
    F.binary_cross_entropy: "bce",
    F.mse_loss: "mse",
    F.l1_loss: "l1",
    F.smooth_l1_loss: "huber",
    F.huber_loss: "huber",
    F.kl_div: "kl",
}
SOFTMAX_LOSSES = frozenset({"cross_entropy", "softmax_like"})  # losses that apply log_softmax to their input
CLASS_LOSSES = frozenset({"cross_entropy", "nll", "softmax_like"})
BINARY_LOSSES = frozenset({"bce", "bce_logits"})
REGRESSION_LOSSES = frozenset({"mse", "l1", "huber"})
ELEMENTWISE_LOSSES = BINARY_LOSSES | REGRESSION_LOSSES


def loss_kind_by_name(loss_fn: Callable[..., Any]) -> str | None:
    """The kind of a torch loss module or function (also through functools.partial); None for anything else."""
    while isinstance(loss_fn, functools.partial):
        loss_fn = loss_fn.func
    for cls, kind in _LOSS_CLASSES:
        if isinstance(loss_fn, cls):
            return kind
    try:
        return _LOSS_FUNCTIONS.get(loss_fn)
    except TypeError:  # unhashable callables
        return None


class _LossCalls(TorchFunctionMode):
    """Records each torch loss function called while it is active, and whether it was given `prediction` and
    `targets` themselves (a loss on a reshaped or transformed prediction is another loss, read by its behaviour)."""

    def __init__(self, prediction: torch.Tensor, targets: torch.Tensor) -> None:
        super().__init__()
        self.prediction, self.targets = prediction, targets
        self.calls: list[tuple[str, bool]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        try:
            kind = _LOSS_FUNCTIONS.get(func)
        except TypeError:
            kind = None
        if kind is not None:
            self.calls.append((kind, len(args) >= 2 and args[0] is self.prediction and args[1] is self.targets))
        return func(*args, **(kwargs or {}))


def loss_kind_by_calls(loss_fn: Callable[..., Any], model_output: Any, targets: torch.Tensor) -> str | None:
    """The kind of the one torch loss a hand-written loss calls, when it passes it the prediction and targets
    unchanged (a function or lambda around F.nll_loss, a module wrapping nn.CrossEntropyLoss); None otherwise."""
    prediction = primary_output(model_output)
    if prediction is None:
        return None
    calls = _LossCalls(prediction, targets)
    try:
        with torch.no_grad(), calls:
            loss_fn(model_output, targets)
    except Exception:
        return None
    return calls.calls[0][0] if len(calls.calls) == 1 and calls.calls[0][1] else None


def is_shift_invariant(loss_fn: Callable[..., Any], model_output: Any, targets: torch.Tensor) -> bool:
    """Whether adding a constant to every class score leaves the loss unchanged: the mark of a loss that applies
    softmax itself (cross-entropy and its variants)."""
    outputs = primary_output(model_output)
    if outputs is None or outputs.dim() < 2 or outputs.shape[1] < 2 or not outputs.is_floating_point():
        return False
    with torch.no_grad():
        z = torch.randn_like(outputs)
        try:
            a = _scalar(loss_fn(replace_primary(model_output, z), targets))
            b = _scalar(loss_fn(replace_primary(model_output, z + 3.0), targets))
        except Exception:
            return False
    return bool(torch.isfinite(torch.tensor([a, b])).all()) and abs(a - b) <= 1e-4 * max(1.0, abs(a))


def _scalar(value: Any) -> float:
    return float(value.float().mean()) if isinstance(value, torch.Tensor) else float(value)


@dataclass(frozen=True)
class Task:
    """`kind` is multiclass, binary, multilabel, regression or unknown; `num_classes` the model's class outputs.
    `dense` marks one prediction per position (segmentation: per pixel); `threshold` is where a single binary
    output turns from class 0 to 1 (0 for a logit, 0.5 for a probability)."""

    kind: str
    loss_kind: str
    num_classes: int | None
    reason: str
    dense: bool = False
    threshold: float = 0.0

    @property
    def is_classification(self) -> bool:
        return self.kind in ("multiclass", "binary", "multilabel")

    def read_by(self, loss_kind: str | None) -> Task:
        """This task as a fix's binary loss reads the outputs: BCELoss made BCEWithLogitsLoss turns the outputs
        from probabilities into logits, and the class threshold from 0.5 to 0."""
        if self.kind not in ("binary", "multilabel") or loss_kind not in BINARY_LOSSES or loss_kind == self.loss_kind:
            return self
        return dataclasses.replace(self, loss_kind=loss_kind, threshold=0.5 if loss_kind == "bce" else 0.0)


def infer_task(loss_fn: Callable[..., Any], model_output: Any, targets: torch.Tensor | None) -> Task:
    """Decide the task from the loss's kind first, the targets' dtype and shape second. `model_output` is what
    the model returned (a tensor, or a tuple/dict holding one)."""
    outputs = primary_output(model_output)
    if outputs is None:
        return Task("unknown", "unknown", None, "the model output holds no tensor")
    kind = loss_kind_by_name(loss_fn)
    if kind is None and targets is not None:
        kind = loss_kind_by_calls(loss_fn, model_output, targets)
    width = int(outputs.shape[1]) if outputs.dim() >= 2 else 1
    if kind is None and targets is not None and is_shift_invariant(loss_fn, model_output, targets):
        kind = "softmax_like"
    kind = kind or "unknown"
    dense = outputs.dim() >= 3
    if kind in CLASS_LOSSES:
        where = " per position" if dense else ""
        return Task("multiclass", kind, width, f"{kind} loss over {width} outputs{where}", dense)
    if kind in BINARY_LOSSES:
        threshold = 0.5 if kind == "bce" else 0.0
        if dense or width == 1:
            return Task("binary", kind, 2, f"{kind} loss" + (" per position" if dense else ""), dense, threshold)
        return Task("multilabel", kind, width, f"{kind} loss over {width} labels", False, threshold)
    if kind in REGRESSION_LOSSES:
        if targets is not None and _binary_values(targets) and targets.shape == outputs.shape and width == 1:
            return Task("binary", kind, 2, f"{kind} loss on 0/1 targets", dense, 0.5)
        return Task("regression", kind, None, f"{kind} loss", dense)
    if targets is None:
        return Task("unknown", kind, None, "no targets")
    if not targets.is_floating_point() and outputs.dim() >= 2 and width > 1 and targets.dim() == outputs.dim() - 1:
        return Task("multiclass", kind, width, "integer targets with one output per class", dense)
    if targets.numel() == outputs.numel() and (targets.is_floating_point() or _binary_values(targets)):
        if not _binary_values(targets):
            return Task("regression", kind, None, "float targets", dense)
        threshold = binary_threshold(loss_fn, model_output, targets)  # integer 0/1 targets a loss casts to float
        if dense or width == 1:
            return Task("binary", kind, 2, "0/1 targets", dense, threshold)
        return Task("multilabel", kind, width, f"0/1 targets over {width} labels", False, threshold)
    return Task("unknown", kind, None, "loss and targets give no clear task")


def _binary_values(targets: torch.Tensor) -> bool:
    return targets.numel() > 0 and bool(((targets == 0) | (targets == 1)).all())


def binary_reading(loss_fn: Callable[..., Any], model_output: Any, targets: torch.Tensor) -> str | None:
    """Whether the loss is a binary cross-entropy, and what it reads: on logits it costs ln 2 at an output of 0, on
    probabilities at 0.5, whatever the targets. "logits", "probabilities", or None for any other loss. Only outputs
    with one value per target are read: a multi-class log loss on (N, C) outputs also costs ln 2 at 0.5."""
    outputs = primary_output(model_output)
    if outputs is None or not outputs.is_floating_point() or outputs.numel() != targets.numel():
        return None
    with torch.no_grad():
        for value, reading in ((0.0, "logits"), (0.5, "probabilities")):
            try:
                loss = _scalar(loss_fn(replace_primary(model_output, torch.full_like(outputs, value)), targets))
            except Exception:
                continue
            if abs(loss - math.log(2)) <= 1e-3:
                return reading
    return None


def binary_threshold(loss_fn: Callable[..., Any], model_output: Any, targets: torch.Tensor) -> float:
    """Where a single binary output turns from class 0 to 1: 0 for a logit, else 0.5."""
    return 0.0 if binary_reading(loss_fn, model_output, targets) == "logits" else 0.5
