"""The learning-rate range test (Leslie Smith): train a copy with an exponentially growing LR and read the loss."""

from __future__ import annotations

import enum
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch, BatchKeys, iterate, primary_output
from torchmedic.clone import OptimizerSpec, clone_model
from torchmedic.errors import InputError, LossError, ModelError
from torchmedic.guard import preserved
from torchmedic.remedies.lr_suggestion import SuggestConfig, suggest_lr

log = logging.getLogger(__name__)

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]


class StopReason(str, enum.Enum):
    """Why the range test ended."""

    COMPLETED = "completed"  # every LR up to end_lr was tried
    DIVERGED = "diverged"  # the loss rose far above the best loss seen
    NONFINITE = "nonfinite"  # the loss became NaN or infinite


@dataclass(frozen=True)
class RangeTestConfig:
    """When the range test stops early."""

    diverge_factor: float = 4.0  # stop once the loss exceeds 4x the best seen (fastai and Lightning use 4)
    divergence_window: int = 3  # the divergence check reads the median of the last 3 losses: one bad batch won't
    # stop it
    check_flat: bool = True  # a flat curve is checked by training at one LR per decade: a slow starter's loss moves
    # only after tens of steps at one LR, which a range test (one step per LR) never holds
    min_check_fall: float = 0.05  # a checked LR counts when its loss ends 5% below where it started
    suggest: SuggestConfig = field(default_factory=SuggestConfig)


@dataclass(frozen=True)
class LRFinderResult:
    """An LR range test: the curve, the suggested LR (None when flat), and why the test stopped."""

    lrs: tuple[float, ...]  # the first parameter group's LR at each step; other groups keep their ratio to it
    losses: tuple[float, ...]  # the raw training loss of each step
    smoothed: tuple[float, ...]
    suggestion: float | None
    method: str  # the rule behind `suggestion` and the derivative it reads
    confidence: float  # in [0, 1]: how far the loss fell against its noise, and whether the rules agree
    flat: bool  # no LR made the loss fall
    stop: StopReason
    stop_detail: str
    message: str
    candidates: tuple[tuple[str, float], ...]
    optimizer: str
    group_ratios: tuple[float, ...]  # each group's LR relative to the first group's, kept throughout


def find_lr(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    keys: BatchKeys | None = None,
    config: RangeTestConfig | None = None,
) -> LRFinderResult:
    """Find a learning rate that trains this model, by an LR range test on copies of the model and optimizer.

    The user's model, optimizer, gradients and random generators are exactly as before afterwards, also when the
    model or the loss raises. The loader is cycled when it has fewer than `num_iter` batches.
    """
    _check_range(start_lr, end_lr, num_iter)
    with preserved(model, optimizer, loader):
        spec = OptimizerSpec.of(optimizer, model)
        copy = clone_model(model)
        result = range_test(copy, _cycle(loader, keys or BatchKeys()), loss_fn, spec, start_lr=start_lr,
                            end_lr=end_lr, num_iter=num_iter, config=config)  # fmt: skip
        if result.flat and (config or RangeTestConfig()).check_flat:
            result = _checked(result, model, _cycle(loader, keys or BatchKeys()), loss_fn, spec, num_iter,
                              config or RangeTestConfig())  # fmt: skip
        return result


CHECKED_DECADES = {"SGD": (-4, 0)}  # the LRs people use, one per decade: SGD up to 1, adaptive optimizers up to 0.1
ADAPTIVE_DECADES = (-5, -1)
CHECKED_CONFIDENCE = 0.5  # a decade grid places the LR within a factor of ~3 and says nothing finer


def _checked(
    result: LRFinderResult,
    model: nn.Module,
    batches: Iterator[Batch],
    loss_fn: LossFn,
    spec: OptimizerSpec,
    steps: int,
    config: RangeTestConfig,
) -> LRFinderResult:
    """A flat curve checked: a fresh copy trained `steps` steps at each usual LR (one per decade). When one makes the
    loss fall, it is the suggestion; only when none does is the curve flat."""
    low, high = CHECKED_DECADES.get(spec.name, ADAPTIVE_DECADES)
    falls: list[tuple[float, float]] = []
    for exponent in range(low, high + 1):
        lr = 10.0**exponent
        copy = clone_model(model)
        optimizer = spec.scaled_lr(lr / spec.lr).build(copy) if spec.lr > 0 else spec.with_lr(lr).build(copy)
        device = next((p.device for p in copy.parameters()), None)
        copy.train()
        try:
            losses = [_step(copy, next(batches).to(device), loss_fn, optimizer, i) for i in range(steps)]
        except (LossError, ModelError):
            continue  # this LR blew the outputs up until the loss refused them
        k = max(1, steps // 10)
        first, last = sorted(losses[:k])[k // 2], sorted(losses[-k:])[k // 2]
        if math.isfinite(first) and math.isfinite(last) and first > 0:
            falls.append(((first - last) / first, lr))
    best = max(falls, default=(0.0, math.nan))
    if best[0] < config.min_check_fall:
        checked = f"; checked: no LR from 1e{low} to 1e{high} made the loss fall within {steps} steps"
        return replace(result, message=result.message + checked)
    message = (
        f"suggested lr {best[1]:.3g}: the range test's curve was flat, but trained {steps} steps at one LR per decade "
        f"the loss fell most at lr {best[1]:.3g} ({best[0]:.0%}), a slow start"
    )
    candidates = tuple((f"1e{math.log10(lr):.0f}", fall) for fall, lr in falls)  # the fall at each LR checked
    method = f"one LR per decade, each held for {steps} steps"
    return replace(result, suggestion=best[1], flat=False, confidence=CHECKED_CONFIDENCE, method=method,
                   message=message, candidates=candidates)  # fmt: skip


def range_test(
    model_copy: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn,
    spec: OptimizerSpec,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    config: RangeTestConfig | None = None,
) -> LRFinderResult:
    """Run the range test on a model that may be trained (already a copy); a sequence of batches is cycled."""
    _check_range(start_lr, end_lr, num_iter)
    config = config or RangeTestConfig()
    source = _batches(batches)
    optimizer = spec.build(model_copy)
    ratios = _group_ratios(spec)
    device = next((p.device for p in model_copy.parameters()), None)
    model_copy.train()
    lrs: list[float] = []
    losses: list[float] = []
    best, stop, detail = math.inf, StopReason.COMPLETED, f"reached end_lr={end_lr:g} after {num_iter} steps"
    for step in range(num_iter):
        lr = start_lr * (end_lr / start_lr) ** (step / max(num_iter - 1, 1))
        for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
            _set_lr(group, lr * ratio)
        loss = _step(model_copy, next(source).to(device), loss_fn, optimizer, step)
        lrs.append(lr)
        losses.append(loss)
        if not math.isfinite(loss):
            stop, detail = StopReason.NONFINITE, f"loss {loss} at lr={lr:.3g} (step {step})"
            break
        window = losses[-config.divergence_window :]
        recent = sorted(window)[len(window) // 2]
        best = min(best, recent)
        if recent > best + (config.diverge_factor - 1) * max(abs(best), 1e-12):
            stop = StopReason.DIVERGED
            detail = f"loss {recent:.4g} > {config.diverge_factor:g} x best {best:.4g} at lr={lr:.3g} (step {step})"
            break
    found = suggest_lr(lrs, losses, config.suggest)
    log.info("LR range test: %s; %s", detail, found.message)
    return LRFinderResult(
        lrs=tuple(lrs), losses=tuple(losses), smoothed=found.smoothed, suggestion=found.suggestion,
        method=found.method, confidence=found.confidence, flat=found.flat, stop=stop, stop_detail=detail,
        message=found.message, candidates=found.candidates, optimizer=spec.name, group_ratios=tuple(ratios),
    )  # fmt: skip


def _check_range(start_lr: float, end_lr: float, num_iter: int) -> None:
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise InputError(f"the LR range must satisfy 0 < start_lr < end_lr; got start_lr={start_lr}, end_lr={end_lr}.")
    if num_iter < 2:
        raise InputError(f"num_iter={num_iter}: a range test needs at least 2 steps (100 is usual).")


def _cycle(loader: Iterable[Any], keys: BatchKeys) -> Iterator[Batch]:
    while True:
        yield from iterate(loader, keys)


def _batches(batches: Iterable[Batch]) -> Iterator[Batch]:
    if isinstance(batches, Sequence):
        if not batches:
            raise InputError("range_test got an empty list of batches.")
        return itertools.cycle(batches)
    return iter(batches)


def _group_ratios(spec: OptimizerSpec) -> list[float]:
    base = spec.lr
    ratios = []
    for group in spec.groups:
        lr = group.hyper.get("lr", spec.defaults.get("lr", base))
        ratio = float(lr) / base if base and math.isfinite(base) else 1.0
        ratios.append(ratio if math.isfinite(ratio) else 1.0)
    return ratios


def _set_lr(group: dict[str, Any], lr: float) -> None:
    if isinstance(group.get("lr"), torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def _step(model: nn.Module, batch: Batch, loss_fn: LossFn, optimizer: torch.optim.Optimizer, step: int) -> float:
    optimizer.zero_grad(set_to_none=True)
    try:
        outputs = batch.run(model)
    except Exception as exc:
        shapes = [tuple(t.shape) for t in (batch.inputs if isinstance(batch.inputs, tuple) else (batch.inputs,))]
        raise ModelError(
            f"the model raised at LR range-test step {step} on inputs of shape {shapes}: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        loss = loss_fn(outputs, batch.loss_targets)
    except Exception as exc:
        out = primary_output(outputs)
        if step > 0 and out is not None and out.is_floating_point() and not bool(torch.isfinite(out).all()):
            return math.inf  # the outputs blew up and a loss that checks its input's range (BCELoss) refused them
        raise LossError(
            f"loss_fn raised on outputs of shape {None if out is None else tuple(out.shape)} and targets of shape "
            f"{tuple(batch.loss_targets.shape)}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise LossError(f"loss_fn must return a scalar tensor, got {got}: use reduction='mean'.")
    if loss.requires_grad:  # a loss without grad (every parameter frozen) cannot train: the curve stays flat
        loss.backward()
        optimizer.step()
    return float(loss.detach())
