"""diagnose(): run the probes on copies within the budget, read the symptom, let the rules suspect causes, confirm
causes by intervention (a differential diagnosis when the symptom is present), and rank what is left."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

import torchmedic.probes  # import registers the probes
import torchmedic.rules  # noqa: F401  (import registers the rules)
from torchmedic import progress
from torchmedic.batch import BatchKeys, prediction_at
from torchmedic.clone import DEFAULT_OPTIMIZER
from torchmedic.config import DEFAULT_BUDGET_S, DiagnoseConfig
from torchmedic.confirmed import from_interventions, with_code, with_verdict
from torchmedic.context import Context, build
from torchmedic.differential import differential, explained_by_hand
from torchmedic.errors import InputError, TorchMedicError, TorchMedicWarning
from torchmedic.finding import Finding
from torchmedic.guard import preserved
from torchmedic.probes.registry import PROBES, Probe
from torchmedic.report import Report
from torchmedic.rules.registry import evaluate
from torchmedic.symptom import read_symptom
from torchmedic.verdict import Verdicts

log = logging.getLogger(__name__)


def diagnose(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[..., Any],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    device: torch.device | str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    keys: BatchKeys | None = None,
    config: DiagnoseConfig | None = None,
) -> Report:
    """Find out why this setup gives the same output, on copies of the model and optimizer.

    `loader` is any re-iterable of batches: `(inputs, targets, ...)` tuples or lists, dicts (see `BatchKeys`), or
    bare tensors (then the loss is called as `loss_fn(outputs, inputs)`). Without an optimizer, trials use
    Adam(lr=1e-3) and the report says so. The user's objects and every RNG are left exactly as they were.
    """
    config = config or DiagnoseConfig()
    check_arguments(model, loss_fn, optimizer)
    with preserved(model, optimizer, loader):
        ctx = build(model, loader, loss_fn, optimizer, device, budget_s, keys or BatchKeys(), config)
        if ctx.spec.is_default:
            ctx.notes.append(f"no optimizer given: trials used {DEFAULT_OPTIMIZER}")
        with prediction_at(ctx.prediction_key):
            examine(ctx)
            findings, verdicts = _conclude(ctx)
    explained = explained_by_hand(findings) or any(f.verification is not None and f.verification.passed
                                                   for f in findings)  # fmt: skip
    return Report(findings, ctx.signals, ctx.task.kind, ctx.notes, ctx.skipped, time.perf_counter() - ctx.started,
                  verdicts.symptom, list(verdicts.by_cause.items()), explained,
                  {key: list(trial.losses) for key, trial in ctx.trials.items()})  # fmt: skip


def examine(ctx: Context) -> None:
    """Run every probe that is worth its cost on the copies in `ctx`, in order, within the budget."""
    for probe in PROBES:
        _run_probe(ctx, probe)


def _conclude(ctx: Context) -> tuple[list[Finding], Verdicts]:
    """Suspects from the rules, verdicts from the differential diagnosis, then the findings both support."""
    t = ctx.config.thresholds
    baseline = ctx.trials.get("baseline")
    before = Verdicts(read_symptom(baseline, ctx.task, t), baseline) if baseline and not ctx.untrainable else Verdicts()
    verdicts = differential(ctx, evaluate(ctx.signals, "pre", t, before))
    findings = evaluate(ctx.signals, "pre", t, verdicts)
    findings += from_interventions(ctx, verdicts, findings)
    kept = sorted((f for f in findings if f.confidence >= t.min_confidence), key=lambda f: -f.confidence)
    return [with_code(ctx, with_verdict(f, verdicts)) for f in kept], verdicts


def check_arguments(model: Any, loss_fn: Any, optimizer: Any) -> None:
    """Refuse arguments of the wrong kind before anything is copied or run."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model is a {type(model).__name__}, not a torch.nn.Module.")
    if not callable(loss_fn):
        raise InputError(f"loss_fn is a {type(loss_fn).__name__}, which cannot be called as loss_fn(outputs, targets).")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise InputError(f"optimizer is a {type(optimizer).__name__}, not a torch.optim.Optimizer (or None).")
    if not any(True for _ in model.parameters()):
        raise InputError(f"the model ({type(model).__name__}) has no parameters: there is nothing to train.")
    empty = next((name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta), None)
    if empty is not None:
        raise InputError(
            f"{empty} is on the meta device: it has a shape but no values (a model built under torch.device('meta') "
            "or with empty weights). Materialize it first, e.g. model.to_empty(device='cpu') and load its weights."
        )


STEP_FORWARDS, TRIAL_COPIES = 3, 15  # one step is a forward and a backward of about two; a trial copies the model
# about 15 times over (the fresh model, its snapshots, the gradients, Adam's state and update: ~10 copies)


def _trial_cost(ctx: Context) -> float:
    """Seconds one trial takes, from the baseline, or before it ran the least it can cost: one step and the
    measurements before and after it (a training batch and the held-out samples, twice), in units of the model's
    first forward on a training batch and of one copy of it."""
    baseline = ctx.trials.get("baseline")
    if baseline is not None:
        return baseline.seconds
    batch, held = ctx.train[0].size, ctx.held_out.size
    forwards = STEP_FORWARDS + 2 * (batch + held) / batch
    return forwards * ctx.forward_s + TRIAL_COPIES * ctx.copy_s


def _look_cost(ctx: Context, probe: Probe) -> float:
    """Seconds a forward-only probe takes: the forwards it declares, at the pace of the model's first forward, and
    the copy of the model it runs them on."""
    if not probe.forwards and not probe.held_out_forwards:
        return 0.0
    held = probe.held_out_forwards * ctx.held_out.size / max(1, ctx.train[0].size)
    return (probe.forwards + held) * ctx.forward_s + ctx.copy_s


def _run_probe(ctx: Context, probe: Probe) -> None:
    if probe.steps and ctx.untrainable:
        ctx.skipped.append(f"{probe.name}: {ctx.untrainable}")
        return
    if not probe.when(ctx):
        return
    cost = _trial_cost(ctx) * abs(probe.steps) if probe.steps else _look_cost(ctx, probe)
    if ctx.remaining < cost:
        ctx.skipped.append(f"{probe.name}: out of budget ({ctx.remaining:.1f} s left, needs ~{cost:.1f} s)")
        return
    progress.step(probe.name.replace("_", " "))
    try:
        probe.fn(ctx)
    except (TorchMedicError, MemoryError):
        raise
    except Exception as exc:
        message = f"{probe.name}: {type(exc).__name__}: {exc}"
        warnings.warn(f"torchmedic probe failed and was skipped: {message}", TorchMedicWarning, stacklevel=3)
        ctx.skipped.append(message)
