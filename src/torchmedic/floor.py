"""The loss of the best constant output: what a model that "always gives the same output" achieves at best."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from torchmedic.batch import primary_output, replace_primary
from torchmedic.stats import class_histogram, entropy
from torchmedic.task import Task


def constant_floor(loss_fn: Callable[..., Any], model_output: Any, targets: torch.Tensor, task: Task) -> float:
    """The lowest loss any constant output reaches on these targets (label entropy for cross-entropy, the
    target variance for MSE); found by fitting a constant with the user's loss for any other loss.
    `model_output` is what the model returned (a tensor, or a tuple/dict holding one)."""
    outputs = primary_output(model_output)
    if outputs is None:
        raise ValueError("the model output holds no tensor")
    with torch.no_grad():
        if (
            task.loss_kind in ("cross_entropy", "nll", "softmax_like")
            and task.num_classes
            and not targets.is_floating_point()
            and not _reweighted(loss_fn)
        ):
            return entropy(class_histogram(targets, task.num_classes))
        if task.loss_kind == "mse" and targets.shape == outputs.shape:
            t = targets.detach().double().reshape(targets.shape[0], -1)
            return float(t.var(dim=0, unbiased=False).mean())
    return _fit_constant(loss_fn, model_output, outputs, targets)


def _reweighted(loss_fn: Callable[..., Any]) -> bool:
    """Whether a class loss weighs its classes or smooths its labels: its best constant is then not the label
    entropy (class weights move it towards the balanced guess), so it is fitted."""
    kwargs: dict[str, Any] = {}
    while isinstance(loss_fn, functools.partial):
        kwargs = {**loss_fn.keywords, **kwargs}
        loss_fn = loss_fn.func
    weight = kwargs.get("weight", getattr(loss_fn, "weight", None))
    smoothing = kwargs.get("label_smoothing", getattr(loss_fn, "label_smoothing", 0.0))
    return weight is not None or bool(smoothing)


def _fit_constant(
    loss_fn: Callable[..., Any], model_output: Any, outputs: torch.Tensor, targets: torch.Tensor, steps: int = 150
) -> float:
    """Minimize the loss over one output shared by every sample (Adam on a free vector)."""
    start = outputs.detach().float().mean(dim=0, keepdim=True)
    const = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([const], lr=0.1)
    best = float("inf")
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn(replace_primary(model_output, const.expand_as(outputs).to(outputs.dtype)), targets)
            loss = loss.float().mean()
            if not torch.isfinite(loss):
                break
            best = min(best, float(loss.detach()))
            loss.backward()
            opt.step()
    return best
