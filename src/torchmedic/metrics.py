"""How well a model does on one batch, measured in eval mode: the loss against the best constant output, and the
predictions as the user reads them (argmax, a threshold for one output, per pixel, per label)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch, primary_output
from torchmedic.floor import constant_floor
from torchmedic.stats import between_sample_std, class_histogram
from torchmedic.task import Task
from torchmedic.wrappers import LossAdapter


@dataclass(frozen=True)
class Metrics:
    """How well the model does on one batch. Predictions count per sample, per position for dense outputs, and are
    averaged over labels for multi-label outputs."""

    loss: float
    floor: float  # the loss of the best constant output on this batch
    output_std: float  # how much the output varies across samples
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    top_fraction: float | None = None  # share of predictions on the most predicted class
    predicted_classes: int | None = None
    chance: float | None = None  # balanced accuracy of a constant or random guess: 1 / classes present
    top_class: int | None = None  # the most predicted class
    majority: float | None = None  # share of the most frequent true class: a perfect model predicts it this often
    finite_outputs: bool = True
    r2: float | None = None  # values predicted: R^2 of the outputs against the targets, averaged over targets

    @property
    def gain(self) -> float:
        """How much better than the best constant output: R^2 of the predictions when the model predicts values,
        else 1 - loss / floor; <= 0 means the model is no better than always giving the same output."""
        if self.r2 is not None:
            return self.r2
        if not math.isfinite(self.loss):
            return -math.inf
        if self.floor <= 1e-12:
            return 0.0 if self.loss <= 1e-9 else -math.inf
        return 1.0 - self.loss / self.floor

    @property
    def skill(self) -> float | None:
        """Balanced accuracy rescaled so that chance is 0 and perfect is 1 (None when not classifying)."""
        if self.balanced_accuracy is None or self.chance is None or self.chance >= 1:
            return None
        return (self.balanced_accuracy - self.chance) / (1 - self.chance)

    @property
    def score(self) -> float:
        """How well the predictions follow the targets: skill for classes, gain for values (-inf when not finite)."""
        value = self.skill if self.skill is not None else self.gain
        return value if math.isfinite(value) else -math.inf


def loss_value(loss_fn: Callable[..., Any], outputs: Any, targets: torch.Tensor) -> torch.Tensor:
    """Call the user's loss and reduce it to a scalar the way a training loop would (mean of a vector)."""
    loss = loss_fn(outputs, targets)
    if not isinstance(loss, torch.Tensor):
        loss = torch.as_tensor(loss, dtype=torch.float32)
    return loss if loss.dim() == 0 else loss.mean()


def measure(
    model: nn.Module, batch: Batch, loss_fn: Callable[..., Any], task: Task, floor: float | None = None
) -> Metrics:
    """Metrics of `model` on `batch` in eval mode (mode restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = batch.run(model)
            targets = batch.loss_targets
            loss = float(loss_value(loss_fn, outputs, targets))
            out = primary_output(outputs)
    finally:
        model.train(was_training)
    if out is None:
        return Metrics(loss, loss if floor is None else floor, 0.0)
    if floor is None:
        floor = constant_floor(loss_fn, outputs, targets, task)
    finite = bool(torch.isfinite(out).all()) if out.is_floating_point() else True
    metrics = Metrics(loss, floor, between_sample_std(out), finite_outputs=finite)
    if task.is_classification and batch.targets is not None and finite:
        labels = loss_fn.labels(batch.targets) if isinstance(loss_fn, LossAdapter) else batch.targets
        metrics = replace(metrics, **classification_metrics(out, labels, task))
    elif task.kind in ("regression", "unknown"):
        metrics = replace(metrics, r2=r_squared(out, targets) if finite else -math.inf)
    return metrics


def r_squared(out: torch.Tensor, targets: torch.Tensor) -> float | None:
    """1 - residual / total sum of squares per target, averaged (targets constant over the batch are left out);
    None when the output does not hold one value per target."""
    if not out.is_floating_point() or not targets.is_floating_point() or out.numel() != targets.numel():
        return None
    if targets.dim() == 0 or targets.shape[0] < 2:
        return None
    y = targets.detach().double().reshape(targets.shape[0], -1)
    pred = out.detach().double().reshape(y.shape)
    total = ((y - y.mean(0)) ** 2).sum(0)
    varying = total > 1e-12 * (y.abs().max() ** 2 + 1e-30)
    if not bool(varying.any()):
        return None
    residual = ((y - pred) ** 2).sum(0)
    value = float((1 - residual[varying] / total[varying]).mean())
    return value if math.isfinite(value) else -math.inf


def predictions(out: torch.Tensor, task: Task) -> torch.Tensor:
    """Predicted class per sample (per position for dense outputs, per label for multi-label ones): argmax over
    the class dimension, or the task's threshold for single outputs."""
    if task.kind == "multiclass" and out.dim() >= 2 and out.shape[1] > 1:
        return out.argmax(dim=1)
    return (out > task.threshold).long()


def _labels(targets: torch.Tensor) -> torch.Tensor:
    true = targets.detach().cpu()
    return (true.round() if true.is_floating_point() else true).long()


def classification_metrics(out: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, Any]:
    """Accuracy, balanced accuracy and how concentrated the predictions are, against the labels."""
    pred = predictions(out.detach().float(), task).cpu()
    true = _labels(targets)
    if task.kind == "multilabel":
        return _multilabel(pred.reshape(pred.shape[0], -1), true.reshape(true.shape[0], -1))
    if pred.numel() != true.numel():
        return {}
    return _single(pred.reshape(-1), true.reshape(-1), task.num_classes or 0)


def _single(pred: torch.Tensor, true: torch.Tensor, num_classes: int) -> dict[str, Any]:
    if true.numel() == 0 or int(true.min()) < 0 or int(pred.min()) < 0:
        return {}
    classes = max(num_classes, int(pred.max()) + 1, int(true.max()) + 1)
    hist = class_histogram(pred, classes)
    truth = class_histogram(true, classes)
    present = torch.unique(true)
    recalls = [float((pred[true == c] == c).float().mean()) for c in present]
    return {
        "accuracy": float((pred == true).float().mean()),
        "balanced_accuracy": sum(recalls) / len(recalls),
        "top_fraction": float(hist.max()) / max(1, pred.numel()),
        "predicted_classes": int((hist > 0).sum()),
        "chance": 1.0 / len(present),
        "top_class": int(hist.argmax()),
        "majority": float(truth.max()) / max(1, true.numel()),
    }


def _multilabel(pred: torch.Tensor, true: torch.Tensor) -> dict[str, Any]:
    """Per-label metrics averaged over the labels that hold both values (a label always 0 tells nothing)."""
    if pred.shape != true.shape:
        return {}
    per_label = [_single(pred[:, j], true[:, j], 2) for j in range(true.shape[1]) if true[:, j].unique().numel() == 2]
    per_label = [m for m in per_label if m]
    if not per_label:
        return {}

    def mean(key: str) -> float:
        return sum(m[key] for m in per_label) / len(per_label)

    return {
        "accuracy": mean("accuracy"),
        "balanced_accuracy": mean("balanced_accuracy"),
        "top_fraction": mean("top_fraction"),
        "predicted_classes": min(m["predicted_classes"] for m in per_label),
        "chance": 0.5,
        "majority": mean("majority"),
    }
