"""Held-out metrics that tell a setup that learned from one that gives the same output for everything."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.cases.registry import Setup
from bench.training import split_batch


@dataclass(frozen=True)
class Metrics:
    """Held-out results: balanced accuracy, its chance level and the share of the most predicted class, or R².

    Dense tasks count every pixel as a sample; multi-label tasks average balanced accuracy over the labels."""

    task: str
    finite: bool
    accuracy: float = math.nan
    balanced_accuracy: float = math.nan
    chance: float = math.nan
    top_class_fraction: float = math.nan
    majority_fraction: float = math.nan  # share of the most frequent true class: what a perfect model predicts most
    r2: float = math.nan

    @property
    def skill(self) -> float:
        """Balanced accuracy rescaled so that chance is 0 and perfect is 1."""
        return (self.balanced_accuracy - self.chance) / (1.0 - self.chance)

    def __str__(self) -> str:
        if not self.finite:
            return "non-finite outputs"
        if self.task == "regression":
            return f"R2 {self.r2:+.2f}"
        return (
            f"acc {self.accuracy:.2f}  bal {self.balanced_accuracy:.2f} (chance {self.chance:.2f})  "
            f"top {self.top_class_fraction:.2f}"
        )


def primary(out: Any) -> torch.Tensor:
    """The prediction tensor of a model output: the tensor, `logits` of a dict or object, or a tuple's first."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        return out["logits"] if "logits" in out else next(v for v in out.values() if isinstance(v, torch.Tensor))
    if isinstance(out, (tuple, list)):
        return next(v for v in out if isinstance(v, torch.Tensor))
    return out.logits


@torch.no_grad()
def evaluate(setup: Setup) -> Metrics:
    """Predict the eval loader in eval mode, the way the user checks the trained model."""
    setup.model.eval()
    predictions, targets = [], []
    for batch in setup.eval_loader:
        x, y = split_batch(batch)
        out = setup.model(x)
        if setup.predict is not None:
            predictions.append(setup.predict(out).float())
        else:
            out = primary(out).float()
            if not torch.isfinite(out).all():
                return Metrics(setup.task, finite=False)
            predictions.append(out if setup.task == "regression" else predict(out, setup.loss_fn, setup.task))
        targets.append(y)
    pred, y = torch.cat(predictions), torch.cat(targets)
    if not torch.isfinite(pred).all():
        return Metrics(setup.task, finite=False)
    if setup.task == "regression":
        return regression_metrics(pred.reshape(len(pred), -1), y.reshape(len(y), -1).float())
    if setup.task == "multilabel":
        return multilabel_metrics(pred.reshape(len(pred), -1).long(), y.reshape(len(y), -1).round().long())
    return classification_metrics(setup.task, pred.reshape(-1).long(), _labels(y, setup.task).reshape(-1))


def _labels(y: torch.Tensor, task: str) -> torch.Tensor:
    """Class ids of the targets: binary masks of 0/1 floats (or 0/255) become 0/1."""
    y = y.round().long() if y.is_floating_point() else y.long()
    return (y > 0).long() if task in ("binary", "segmentation") and int(y.max()) > 1 and y.unique().numel() == 2 else y


def predict(out: torch.Tensor, loss_fn: object, task: str = "classification") -> torch.Tensor:
    """Class predictions: argmax over dim 1 when it holds several outputs (per pixel for dense outputs); a single
    output is a probability under BCELoss, else a logit, thresholded per sample, pixel or label."""
    threshold = 0.5 if isinstance(loss_fn, nn.BCELoss) else 0.0
    if task == "multilabel":
        return (out > threshold).long()
    if out.dim() >= 2 and out.shape[1] > 1:
        return out.argmax(dim=1)
    return (out > threshold).long().reshape(len(out), *out.shape[2:]) if out.dim() >= 2 else (out > threshold).long()


def classification_metrics(task: str, pred: torch.Tensor, y: torch.Tensor) -> Metrics:
    """Balanced accuracy (mean recall over the classes present), its chance level and the top-class share."""
    classes = y.unique()
    recalls = [(pred[y == c] == c).float().mean().item() for c in classes]
    n_classes = 2 if task == "binary" else max(len(classes), 2)
    top = pred.clamp_min(0).bincount().max().item() / len(pred)
    majority = y.clamp_min(0).bincount().max().item() / len(y)
    accuracy = (pred == y).float().mean().item()
    return Metrics(task, True, accuracy, sum(recalls) / len(recalls), 1.0 / n_classes, top, majority)


def multilabel_metrics(pred: torch.Tensor, y: torch.Tensor) -> Metrics:
    """Per-label balanced accuracy, top-class and majority shares, averaged over the labels that hold both values
    (a model that always predicts the same set of labels has balanced accuracy 0.5 on each)."""
    both = [j for j in range(y.shape[1]) if y[:, j].unique().numel() == 2]
    per_label = [classification_metrics("binary", pred[:, j], y[:, j]) for j in both]
    return Metrics(
        "multilabel",
        True,
        sum(m.accuracy for m in per_label) / len(per_label),
        sum(m.balanced_accuracy for m in per_label) / len(per_label),
        0.5,
        sum(m.top_class_fraction for m in per_label) / len(per_label),
        sum(m.majority_fraction for m in per_label) / len(per_label),
    )


def regression_metrics(out: torch.Tensor, y: torch.Tensor) -> Metrics:
    """R² (averaged over targets for several): 1 for a perfect fit, 0 for the held-out mean, below 0 for worse."""
    out, y = out.reshape(len(out), -1), y.reshape(len(y), -1)
    ss_res = ((y - out) ** 2).sum(dim=0)
    ss_tot = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
    return Metrics("regression", True, r2=float((1.0 - ss_res / ss_tot).mean()))
