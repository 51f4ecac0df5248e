"""A linear model on the standardized inputs: do the labels carry any signal, whatever the user's model does?

The permutation control trains the user's model, so it also fails when the model or the data scale is the
problem. A regularized linear fit on standardized (and, for images, pooled) inputs answers the narrower
question of whether the targets are predictable from the inputs at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from torchmedic import signal_names as N
from torchmedic.batch import concat
from torchmedic.context import Context
from torchmedic.stats import class_histogram, entropy

MAX_FEATURES = 4096  # wider inputs are pooled (images) or skipped: the fit must stay a fraction of a second
RIDGE = 1e-2  # mild L2, relative to standardized features: enough to keep the fit stable with few samples


def features(x: torch.Tensor) -> torch.Tensor | None:
    """(N, D) float features: images average-pooled to at most 16x16, token ids counted per id (a bag of words: the
    ids themselves are names, not numbers), everything flattened."""
    if not x.is_floating_point() and x.dim() == 2 and x.numel() and int(x.min()) >= 0:
        ids = x.detach().long().cpu()
        vocab = int(ids.max()) + 1
        if vocab > MAX_FEATURES:
            return None
        return torch.zeros(ids.shape[0], vocab).scatter_add_(1, ids, torch.ones(ids.shape, dtype=torch.float32))
    x = x.detach().float().cpu()
    if x.dim() == 4 and x.shape[-1] * x.shape[-2] > 256:
        x = F.adaptive_avg_pool2d(x, (min(16, x.shape[-2]), min(16, x.shape[-1])))
    x = torch.nan_to_num(x.reshape(x.shape[0], -1), nan=0.0, posinf=0.0, neginf=0.0)
    return x if x.shape[1] <= MAX_FEATURES else None


def _classify(
    x: torch.Tensor, y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, classes: int
) -> tuple[float, float]:
    """Held-out gain (1 - cross-entropy / label entropy) of a multinomial logistic regression, and its standard
    error over the held-out samples."""
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=60, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + RIDGE * weight.pow(2).sum() / x.shape[0]
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        losses = F.cross_entropy(test_x @ weight + bias, test_y, reduction="none").double()
    floor = entropy(class_histogram(test_y, classes))
    return _gain(losses, floor)


def _regress(x: torch.Tensor, y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> tuple[float, float]:
    """Held-out R^2 of ridge regression (closed form), and its standard error over the held-out samples."""
    x1, t1 = F.pad(x, (0, 1), value=1.0).double(), F.pad(test_x, (0, 1), value=1.0).double()
    gram = x1.T @ x1 + RIDGE * x.shape[0] * torch.eye(x1.shape[1], dtype=torch.float64)
    coef = torch.linalg.solve(gram, x1.T @ y.double().reshape(len(y), -1))
    residuals = ((t1 @ coef - test_y.double().reshape(len(test_y), -1)) ** 2).mean(dim=1)
    variance = float(test_y.double().reshape(len(test_y), -1).var(dim=0, unbiased=False).mean())
    return _gain(residuals, variance)


def _gain(losses: torch.Tensor, floor: float) -> tuple[float, float]:
    """1 - mean loss / the constant's loss, with the standard error of that mean (0, 0 without a floor)."""
    if floor <= 0 or losses.numel() < 2:
        return 0.0, 0.0
    return 1.0 - float(losses.mean()) / floor, float(losses.std()) / (losses.numel() ** 0.5 * floor)


def linear_probe(ctx: Context) -> None:
    """The held-out gain of a regularized linear model on the inputs read: do the labels carry any signal?"""
    try:
        samples = concat(ctx.audit)
    except (RuntimeError, TypeError):
        return
    x = features(samples.first_input)
    y = samples.targets
    if x is None or y is None or x.shape[0] < 20 or y.shape[0] != x.shape[0]:
        return
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(ctx.config.seed))
    half = x.shape[0] // 2
    fit, test = order[:half], order[half:]
    mean, std = x[fit].mean(0), x[fit].std(0).clamp_min(1e-6)
    x = (x - mean) / std
    y = y.detach().cpu()
    if (ctx.task.kind in ("multiclass", "binary") and not y.is_floating_point()) or ctx.task.loss_kind == "bce":
        labels = y.flatten().round().long() if y.is_floating_point() else y.flatten().long()
        if labels.shape[0] != x.shape[0] or labels.min() < 0:
            return
        classes = int(labels.max()) + 1
        gain, error = _classify(x[fit], labels[fit], x[test], labels[test], classes)
    else:
        gain, error = _regress(x[fit], y[fit].float(), x[test], y[test].float())
    ctx.signals.emit(N.LINEAR_HELD_OUT_GAIN, gain)
    ctx.signals.emit(N.LINEAR_HELD_OUT_GAIN_SE, error)
