"""Held-out metrics that tell a setup that learned from one that gives the same output for everything."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.cases.registry import Setup
from bench.training import split_batch


@dataclass(frozen=True)
class Metrics:
    """Held-out results: balanced accuracy, its chance level and the share of the most predicted class, or R²."""

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


@torch.no_grad()
def evaluate(setup: Setup) -> Metrics:
    """Predict the eval loader in eval mode, the way the user checks the trained model."""
    setup.model.eval()
    outputs, targets = [], []
    for batch in setup.eval_loader:
        x, y = split_batch(batch)
        outputs.append(setup.model(x).float())
        targets.append(y)
    out, y = torch.cat(outputs), torch.cat(targets)
    if not torch.isfinite(out).all():
        return Metrics(setup.task, finite=False)
    if setup.task == "regression":
        return regression_metrics(out.reshape(len(out)), y.reshape(len(y)).float())
    return classification_metrics(setup.task, predict(out, setup.loss_fn), y.reshape(len(y)).long())


def predict(out: torch.Tensor, loss_fn: object) -> torch.Tensor:
    """Class predictions: argmax over several outputs; a single output is a probability under BCELoss, else a logit."""
    if out.dim() == 2 and out.shape[1] > 1:
        return out.argmax(dim=1)
    threshold = 0.5 if isinstance(loss_fn, nn.BCELoss) else 0.0
    return (out.reshape(len(out)) > threshold).long()


def classification_metrics(task: str, pred: torch.Tensor, y: torch.Tensor) -> Metrics:
    """Balanced accuracy (mean recall over the classes present), its chance level and the top-class share."""
    classes = y.unique()
    recalls = [(pred[y == c] == c).float().mean().item() for c in classes]
    n_classes = 2 if task == "binary" else max(len(classes), 2)
    top = pred.bincount().max().item() / len(pred)
    majority = y.bincount().max().item() / len(y)
    accuracy = (pred == y).float().mean().item()
    return Metrics(task, True, accuracy, sum(recalls) / len(recalls), 1.0 / n_classes, top, majority)


def regression_metrics(out: torch.Tensor, y: torch.Tensor) -> Metrics:
    """R²: 1 for a perfect fit, 0 for predicting the held-out mean, below 0 for worse."""
    ss_res = ((y - out) ** 2).sum().item()
    ss_tot = ((y - y.mean()) ** 2).sum().item()
    return Metrics("regression", True, r2=1.0 - ss_res / ss_tot)
