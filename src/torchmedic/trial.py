"""The short training run that every experiment is made of: a copy, a few optimizer steps, before/after metrics.

Interventions re-run it with one thing changed (re-init, another learning rate, standardized inputs, ...), on
the same batches with the same seed, so that the difference is the effect of that one change. `train` steps the
model and records what happens to the weights; `run_trial` measures before and after it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from torchmedic.batch import Batch
from torchmedic.clone import OptimizerSpec, unwrap
from torchmedic.layers import Activity, param_layers, recording
from torchmedic.metrics import Metrics, loss_value, measure
from torchmedic.setup import Setup
from torchmedic.stats import grad_norms, update_ratio
from torchmedic.task import Task


@dataclass
class Training:
    """What happened while a model trained: the losses, and per layer how the weights moved."""

    steps: int = 0
    losses: list[float] = field(default_factory=list)
    grad_norm: dict[str, float] = field(default_factory=dict)  # per layer, first step
    update_ratio: dict[str, float] = field(default_factory=dict)  # per layer, median over measured steps
    weight_shrink: dict[str, float] = field(default_factory=dict)  # per layer, |W| end / |W| start
    changed: dict[str, bool] = field(default_factory=dict)  # per parameter: moved at all
    missing_grad: list[str] = field(default_factory=list)  # params that require grad but got none
    nonfinite_step: int | None = None
    error: str | None = None


@dataclass
class TrialResult:
    label: str
    lr: float  # of the first parameter group
    seconds: float
    training: Training
    after_train: Metrics
    after_held_out: Metrics
    before_train: Metrics | None = None  # measured only when asked: the fresh model's metrics cost a forward each
    before_held_out: Metrics | None = None
    activity_after: Activity | None = None

    @property
    def steps(self) -> int:
        return self.training.steps

    @property
    def losses(self) -> list[float]:
        return self.training.losses

    @property
    def error(self) -> str | None:
        return self.training.error

    @property
    def nonfinite_step(self) -> int | None:
        return self.training.nonfinite_step

    @property
    def diverged(self) -> bool:
        return self.training.nonfinite_step is not None or not math.isfinite(self.after_train.loss)


GLANCE = 128  # held-out samples a check during training reads: whether to stop or go on needs no more
CALIBRATION_BATCHES = 8  # training batches whose statistics BatchNorm's running averages are set to before a check


def calibrated(model: nn.Module, batches: list[Batch]) -> None:
    """Set BatchNorm's running statistics to the average over `batches` (train-mode forwards, no gradient), as a
    long run would have them: after a few dozen steps they still lag behind the weights (momentum 0.1), and an
    eval-mode judgement would see a broken model that is not. A model without BatchNorm is left as it is."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            for batch in batches[:CALIBRATION_BATCHES]:
                batch.run(model)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)


def _measured(step: int, total: int) -> bool:
    """Update ratios are read on the first steps, every fifth one and the last: their median is stable by then."""
    return step < 3 or step == total - 1 or step % 5 == 0


def _next_step_late(began: float, steps: int, deadline: float | None) -> bool:
    """True when one more step, at the mean pace of the steps so far, would end after the deadline: a slow model
    stops before its budget is spent, not one step after (the first step always runs, to measure the pace)."""
    if deadline is None or steps == 0:
        return False
    now = time.perf_counter()
    return now + (now - began) / steps > deadline


def train(
    model: nn.Module,
    spec: OptimizerSpec,
    loss_fn: Callable[..., object],
    batches: list[Batch],
    steps: int,
    *,
    deadline: float | None = None,
    track_layers: bool = True,
    extend_to: int | None = None,
    extend_if: Callable[[Training], bool] | None = None,
    stop_if: Callable[[], bool] | None = None,
    check_every: int = 10,
) -> Training:
    """Train `model` for `steps` optimizer steps on `batches` (cycled); with `extend_to`, go on to that many steps
    when `extend_if(training so far)` says so at step `steps` (a slow starter gets the time to show that it learns)."""
    optimizer = spec.build(model)
    inner = unwrap(model)  # parameter and layer names as in the user's model, also through a wrapper
    layers = dict(param_layers(inner)) if track_layers else {}
    initial = {n: p.detach().clone() for n, p in inner.named_parameters()}
    record = Training()
    ratios: dict[str, list[float]] = {}
    model.train()
    total = steps
    began = time.perf_counter()
    while True:
        if record.steps == total == steps and extend_to is not None and extend_if is not None:
            total = extend_to if extend_if(record) else steps
            model.train()
        if record.steps >= total or _next_step_late(began, record.steps, deadline):
            break
        if stop_if is not None and record.steps and record.steps % check_every == 0 and stop_if():
            model.train()
            break
        batch = batches[record.steps % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_value(loss_fn, batch.run(model), batch.loss_targets)
        value = float(loss.detach())
        record.losses.append(value)
        if not math.isfinite(value):
            record.nonfinite_step = record.steps
            break
        if not loss.requires_grad:
            record.error = "the loss does not require grad: the graph from the parameters to the loss is cut"
            record.missing_grad = [n for n, p in inner.named_parameters() if p.requires_grad]
            break
        loss.backward()
        if record.steps == 0:
            record.missing_grad = [n for n, p in inner.named_parameters() if p.requires_grad and p.grad is None]
            for name, module in layers.items():
                grads = [p.grad for p in module.parameters(recurse=False) if p.grad is not None]
                record.grad_norm[name] = float(grad_norms(grads).float().norm()) if grads else 0.0
        measured = _measured(record.steps, total)
        before = (
            {n: [p.detach().clone() for p in m.parameters(recurse=False)] for n, m in layers.items()}
            if (measured)
            else {}
        )
        optimizer.step()
        for name, old in before.items():
            ratios.setdefault(name, []).append(update_ratio(old, list(layers[name].parameters(recurse=False))))
        record.steps += 1
    record.update_ratio = {n: float(torch.tensor(r).median()) for n, r in ratios.items()}
    with torch.no_grad():
        for name, p in inner.named_parameters():
            record.changed[name] = not torch.equal(p, initial[name])
        for name, module in layers.items():
            w = getattr(module, "weight", None)
            if isinstance(w, torch.Tensor) and name + ".weight" in initial:
                start = float(initial[name + ".weight"].float().norm())
                record.weight_shrink[name] = float(w.detach().float().norm()) / start if start > 0 else 1.0
    return record


def run_trial(
    setup: Setup,
    steps: int,
    task: Task,
    *,
    seed: int = 0,
    deadline: float | None = None,
    track_layers: bool = True,
    extend_to: int | None = None,
    extend_if: Callable[[Metrics, Training], bool] | None = None,
    stop_when: Callable[[Metrics], bool] | None = None,
    measure_before: bool = True,
) -> TrialResult:
    """Train a fresh model of `setup` for `steps` optimizer steps on its training batches (cycled), measured after
    (and, with `measure_before`, before) on the first training batch and on the held-out samples.

    With `extend_to`, the held-out metrics and the training after `steps` are passed to `extend_if`; when it says so,
    training goes on to `extend_to` steps. With `stop_when`, the held-out metrics are passed to it every few steps
    and training stops as soon as it says so (a trial that ends once the model learns)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model, loss_fn = setup.model(fresh=True), setup.loss_fn
    pool, held_out = setup.train[0], setup.held_out
    before_train = measure(model, pool, loss_fn, task) if measure_before else None
    before_held = measure(model, held_out, loss_fn, task) if measure_before else None
    floors: dict[str, float] = {} if before_train is None or before_held is None else {
        "train": before_train.floor, "held": before_held.floor}  # fmt: skip
    measuring = time.perf_counter() - start  # what the measurements after training will cost again: kept for them

    glance = held_out if held_out.size <= GLANCE else held_out.select(slice(0, GLANCE))

    def held() -> Metrics:
        metrics = measure(model, held_out, loss_fn, task, floors.get("held"))
        floors.setdefault("held", metrics.floor)
        return metrics

    def glanced() -> Metrics:
        calibrated(model, batches)
        metrics = measure(model, glance, loss_fn, task, floors.get("glance"))
        floors.setdefault("glance", metrics.floor)
        return metrics

    def check(record: Training) -> bool:
        return extend_if is not None and extend_if(glanced(), record)

    def stop() -> bool:  # the glance says when to look; the whole held-out sample, which the verdict reads, decides
        return stop_when is not None and stop_when(glanced()) and stop_when(held())

    batches = list(setup.train)
    ends = None if deadline is None else deadline - measuring
    training = train(model, setup.spec, loss_fn, batches, steps, deadline=ends, track_layers=track_layers,
                     extend_to=extend_to, extend_if=check if extend_if else None,
                     stop_if=stop if stop_when else None)  # fmt: skip
    if training.nonfinite_step is None:
        calibrated(model, batches)
    with recording(model, pool.first_input) as activity:
        after_train = measure(model, pool, loss_fn, task, floors.get("train"))
    after_held = held()
    result = TrialResult(setup.label, setup.spec.lr, 0.0, training, after_train, after_held, before_train,
                         before_held, activity)  # fmt: skip
    if training.nonfinite_step is not None:
        result.after_train = replace(after_train, loss=math.inf)
        result.after_held_out = replace(after_held, loss=math.inf)
        result.activity_after = None
    result.seconds = time.perf_counter() - start
    return result
