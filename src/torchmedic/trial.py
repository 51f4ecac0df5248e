"""The short training run that every experiment is made of: a copy, a few optimizer steps, before/after metrics.

Interventions re-run it with one thing changed (re-init, another learning rate, standardized inputs, ...), on
the same batches with the same seed, so that the difference is the effect of that one change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch, primary_output
from torchmedic.clone import OptimizerSpec, unwrap
from torchmedic.floor import constant_floor
from torchmedic.layers import Activity, param_layers, recording
from torchmedic.stats import between_sample_std, class_histogram
from torchmedic.task import Task


def _identity(batch: Batch) -> Batch:
    return batch


@dataclass(frozen=True)
class TrialSetup:
    """Everything one trial uses. `model` is a fresh copy that the trial will train (and so change)."""

    label: str
    model: nn.Module
    spec: OptimizerSpec
    loss_fn: Callable[..., Any]
    train: tuple[Batch, ...]
    held_out: Batch
    prepare: Callable[[Batch], Batch] = _identity  # applied to every batch, e.g. input standardization

    def but(self, **changes: Any) -> TrialSetup:
        return replace(self, **changes)

    def fixed(self, description: str, **changes: Any) -> TrialSetup:
        """This setup with one more fix applied; fixes applied together read "a + b"."""
        return replace(self, label=f"{self.label} + {description}" if self.label else description, **changes)


@dataclass(frozen=True)
class Metrics:
    """How well the model does on one batch, measured in eval mode."""

    loss: float
    floor: float  # the loss of the best constant output on this batch
    output_std: float  # how much the output varies across samples
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    top_fraction: float | None = None  # share of samples predicted as the most predicted class
    predicted_classes: int | None = None
    chance: float | None = None  # balanced accuracy of a constant or random guess: 1 / classes present
    top_class: int | None = None  # the most predicted class

    @property
    def gain(self) -> float:
        """How much better than the best constant output: 1 - loss / floor (R^2 for MSE); <= 0 means the model
        is no better than always giving the same output."""
        if not math.isfinite(self.loss):
            return -math.inf
        if self.floor <= 1e-12:
            return 0.0 if self.loss <= 1e-9 else -math.inf
        return 1.0 - self.loss / self.floor


@dataclass
class TrialResult:
    label: str
    lr: float  # of the first parameter group
    steps: int
    seconds: float
    losses: list[float]
    before_train: Metrics
    after_train: Metrics
    before_held_out: Metrics
    after_held_out: Metrics
    grad_norm: dict[str, float] = field(default_factory=dict)  # per layer, first step
    update_ratio: dict[str, float] = field(default_factory=dict)  # per layer, median over measured steps
    weight_shrink: dict[str, float] = field(default_factory=dict)  # per layer, |W| end / |W| start
    changed: dict[str, bool] = field(default_factory=dict)  # per parameter: moved at all
    missing_grad: list[str] = field(default_factory=list)  # params that require grad but got none
    activity_after: Activity | None = None
    nonfinite_step: int | None = None
    error: str | None = None

    @property
    def diverged(self) -> bool:
        return self.nonfinite_step is not None or not math.isfinite(self.after_train.loss)


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
    metrics = Metrics(loss, floor, between_sample_std(out))
    if task.is_classification and batch.targets is not None:
        metrics = replace(metrics, **classification_metrics(out, batch.targets, task))
    return metrics


def predictions(out: torch.Tensor, task: Task) -> torch.Tensor:
    """Predicted class per sample: argmax over the class dimension, or a threshold for one binary output."""
    if task.kind == "multiclass" and out.dim() >= 2 and out.shape[1] > 1:
        return out.argmax(dim=1)
    flat = out.reshape(out.shape[0], -1)
    threshold = 0.5 if task.loss_kind == "bce" else 0.0
    return (flat[:, 0] > threshold).long()


def classification_metrics(out: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, Any]:
    if task.kind == "multilabel":
        return {}
    pred = predictions(out.detach().float(), task).flatten().cpu()
    true = targets.detach().flatten().cpu()
    if true.is_floating_point():
        true = true.round()
    true = true.long()
    if pred.shape != true.shape:
        return {}
    classes = max(int(task.num_classes or 0), int(pred.max()) + 1, int(true.max()) + 1)
    hist = class_histogram(pred, classes)
    present = torch.unique(true)
    recalls = [float((pred[true == c] == c).float().mean()) for c in present]
    return {
        "accuracy": float((pred == true).float().mean()),
        "balanced_accuracy": sum(recalls) / len(recalls),
        "top_fraction": float(hist.max()) / max(1, pred.numel()),
        "predicted_classes": int((hist > 0).sum()),
        "chance": 1.0 / len(present),
        "top_class": int(hist.argmax()),
    }


def run_trial(
    setup: TrialSetup,
    steps: int,
    task: Task,
    *,
    seed: int = 0,
    deadline: float | None = None,
    track_layers: bool = True,
    extend_to: int | None = None,
    extend_if: Callable[[Metrics], bool] | None = None,
) -> TrialResult:
    """Train `setup.model` for `steps` optimizer steps on the training batches (cycled), measuring as it goes.

    With `extend_to`, the held-out metrics after `steps` are passed to `extend_if`; when it says so, training goes
    on to `extend_to` steps (a slow-starting model gets the time to show that it learns)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model, loss_fn = setup.model, setup.loss_fn
    train = [setup.prepare(b) for b in setup.train]
    held_out = setup.prepare(setup.held_out)
    pool = train[0]
    before_train = measure(model, pool, loss_fn, task)
    before_held = measure(model, held_out, loss_fn, task)
    optimizer = setup.spec.build(model)
    inner = unwrap(model)  # parameter and layer names as in the user's model, also through a wrapper
    layers = param_layers(inner) if track_layers else []
    initial = {n: p.detach().clone() for n, p in inner.named_parameters()}
    result = TrialResult(setup.label, setup.spec.lr, 0, 0.0, [], before_train, before_train, before_held, before_held)
    ratios: dict[str, list[float]] = {}
    model.train()
    total, step = steps, 0
    while True:
        if step == total == steps and extend_to is not None and extend_if is not None:
            # the checkpoint: go on only when the held-out metrics say the model has not learned yet
            total = extend_to if extend_if(measure(model, held_out, loss_fn, task, before_held.floor)) else steps
        if step >= total:
            break
        if deadline is not None and step > 0 and time.perf_counter() > deadline:
            break
        batch = train[step % len(train)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_value(loss_fn, batch.run(model), batch.loss_targets)
        value = float(loss.detach())
        result.losses.append(value)
        if not math.isfinite(value):
            result.nonfinite_step = step
            break
        if not loss.requires_grad:
            result.error = "the loss does not require grad: the graph from the parameters to the loss is cut"
            result.missing_grad = [n for n, p in inner.named_parameters() if p.requires_grad]
            break
        loss.backward()
        if step == 0:
            result.missing_grad = [n for n, p in inner.named_parameters() if p.requires_grad and p.grad is None]
            for name, module in layers:
                grads = [p.grad for p in module.parameters(recurse=False) if p.grad is not None]
                result.grad_norm[name] = math.sqrt(sum(float((g.float() ** 2).sum()) for g in grads))
        measured = track_layers and (step < 3 or step == total - 1 or step % 5 == 0)
        previous = (
            {name: [p.detach().clone() for p in m.parameters(recurse=False)] for name, m in layers} if measured else {}
        )
        optimizer.step()
        for name, old in previous.items():
            params = list(dict(layers)[name].parameters(recurse=False))
            num = math.sqrt(sum(float(((p.detach() - o).float() ** 2).sum()) for p, o in zip(params, old, strict=True)))
            den = math.sqrt(sum(float((o.float() ** 2).sum()) for o in old))
            ratios.setdefault(name, []).append(num / den if den > 0 else (math.inf if num > 0 else 0.0))
        result.steps = step = step + 1
    result.update_ratio = {n: float(torch.tensor(r).median()) for n, r in ratios.items()}
    with torch.no_grad():
        for name, p in inner.named_parameters():
            result.changed[name] = not torch.equal(p, initial[name])
        for name, module in layers:
            w = getattr(module, "weight", None)
            if isinstance(w, torch.Tensor) and name + ".weight" in initial:
                before = float(initial[name + ".weight"].float().norm())
                result.weight_shrink[name] = float(w.detach().float().norm()) / before if before > 0 else 1.0
    if result.nonfinite_step is None:
        with recording(model, pool.first_input) as activity:
            result.after_train = measure(model, pool, loss_fn, task, before_train.floor)
        result.activity_after = activity
        result.after_held_out = measure(model, held_out, loss_fn, task, before_held.floor)
    else:
        inf = replace(before_train, loss=math.inf)
        result.after_train, result.after_held_out = inf, replace(before_held, loss=math.inf)
    result.seconds = time.perf_counter() - start
    return result
