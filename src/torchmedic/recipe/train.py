"""`train()`: the classic CNN recipe with every safeguard on, from data to a checked, resumable run directory."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchmedic.doctor import diagnose
from torchmedic.errors import InputError
from torchmedic.finding import Finding
from torchmedic.models import build_model
from torchmedic.monitor import Monitor
from torchmedic.recipe import builders, checkpoint
from torchmedic.recipe.bar import EpochBar
from torchmedic.recipe.config import TrainConfig
from torchmedic.recipe.datasets import ImageData, load_data
from torchmedic.recipe.epochs import evaluate, train_epoch
from torchmedic.recipe.run_dir import (
    CONFIG,
    METRICS,
    MODEL,
    MONITOR_DIR,
    EpochScalars,
    read_json,
    write_findings,
    write_json,
    write_preflight,
)
from torchmedic.remedies.transforms import channel_stats
from torchmedic.report import Report

log = logging.getLogger("torchmedic.recipe")

RUNTIME_FIELDS = ("device", "workers", "monitor", "preflight", "preflight_budget_s")  # may change on --resume


@dataclass
class TrainResult:
    """A finished (or stopped) run: its settings, per-epoch metrics, the pre-flight report and live findings."""

    out: Path
    config: TrainConfig
    lr: float
    lr_source: str  # "given", "find_lr" or "fallback"
    history: list[dict[str, float]]
    preflight: Report | None
    findings: list[Finding]
    stopped: str | None = None  # "preflight" when the diagnosis found the setup broken and nothing was trained

    @property
    def test_accuracy(self) -> float:
        return self.history[-1]["test_accuracy"] if self.history else float("nan")


def train(
    config: TrainConfig | None = None,
    out: str | Path = "runs/train",
    *,
    resume: bool = False,
    progress: bool = False,
    on_epoch: Callable[[dict[str, float]], Any] | None = None,
) -> TrainResult:
    """Train the reference model on the data named in `config` and leave everything in `out`.

    Normalize from the training images' statistics, training-only augmentation, the classic init, the LR from a range
    test unless given, a per-batch schedule, a pre-flight `diagnose()` that stops a broken setup before it trains,
    the live monitor, and a checkpoint after every epoch. `resume=True` continues the run in `out` bit-for-bit from its
    last checkpoint (`config` may then only change device, workers, monitor and preflight). `on_epoch` receives each
    epoch's metrics. Global RNG states are the caller's again afterwards.
    """
    out = Path(out)
    config, saved = _settings(config, out, resume)
    device = builders.device_for(config.device)
    data = load_data(config.data, config.image_size)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model = build_model(config.model, data.channels, len(data.classes), data.image_size).to(device)
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(config.seed)
        train_loader, test_loader = builders.loaders(data, config, generator, device)
        lr, source = (saved["lr"], saved["lr_source"]) if saved else builders.learning_rate(
            config, model, train_loader, loss_fn)  # fmt: skip
        optimizer = builders.optimizer_for(config, model, lr)
        scheduler = builders.scheduler_for(config, optimizer, lr, builders.steps(train_loader, config.total_epochs))
        result = TrainResult(out, config, lr, source, [], None, [])
        if resume:
            state = checkpoint.load(out / checkpoint.FILENAME)
            checkpoint.restore(state, model, optimizer, scheduler, generator)
            result.history = list(state["history"])
        else:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / CONFIG, _record(config, data, lr, source, len(train_loader)))
            if config.preflight:
                result.preflight = diagnose(model, train_loader, loss_fn, optimizer, device=device,
                                            budget_s=config.preflight_budget_s)  # fmt: skip
                write_preflight(out, result.preflight)
                if result.preflight.symptom is None:
                    budget = config.preflight_budget_s
                    log.warning("the pre-flight diagnosis ran no baseline trial in %g s: training unchecked", budget)
                if result.preflight.broken:
                    result.stopped = "preflight"
                    write_findings(out, result.preflight, [])
                    return result
        _epochs(result, model, loss_fn, optimizer, scheduler, generator, train_loader, test_loader, device,
                progress, on_epoch)  # fmt: skip
        torch.save(model.state_dict(), out / MODEL)
        write_findings(out, result.preflight, result.findings)
    return result


def _epochs(result: TrainResult, model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, generator: torch.Generator, train_loader: Any, test_loader: Any, device: torch.device,
            progress: bool, on_epoch: Callable[[dict[str, float]], Any] | None) -> None:  # fmt: skip
    out, total = result.out, result.config.total_epochs
    monitor = Monitor(model, optimizer, log_dir=out / MONITOR_DIR) if result.config.monitor else None
    scalars = EpochScalars(out)
    bar = EpochBar(total, len(train_loader), progress)
    if monitor is not None:
        monitor.start()
    try:
        for epoch in range(len(result.history) + 1, total + 1):
            started = time.perf_counter()
            bar.start_epoch(epoch)
            lr = optimizer.param_groups[0]["lr"]
            fit = train_epoch(model, train_loader, loss_fn, optimizer, scheduler, device, monitor, bar.batch)
            held_out = evaluate(model, test_loader, loss_fn, device)
            row = {"epoch": epoch, "train_loss": fit.mean_loss, "train_accuracy": fit.accuracy,
                   "test_loss": held_out.mean_loss, "test_accuracy": held_out.accuracy, "lr": lr,
                   "seconds": time.perf_counter() - started}  # fmt: skip
            result.history.append(row)
            checkpoint.save(out / checkpoint.FILENAME, epoch, model, optimizer, scheduler, generator, result.history)
            write_json(out / METRICS, result.history)
            scalars.add(row)
            if on_epoch is not None:
                on_epoch(row)
    finally:
        bar.close()
        scalars.close()
        if monitor is not None:
            monitor.close()
            result.findings = list(monitor.findings)


def _settings(config: TrainConfig | None, out: Path, resume: bool) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The run's config, and on resume what the first run resolved (its LR); refuses to overwrite a run."""
    if not resume:
        if (out / checkpoint.FILENAME).exists():
            raise InputError(f"{out} already holds a run: pass --resume to continue it, or choose another --out.")
        return config or TrainConfig(), None
    if not (out / CONFIG).is_file() or not (out / checkpoint.FILENAME).is_file():
        raise InputError(f"--resume: {out} holds no checkpoint to continue from (no {CONFIG} and "
                         f"{checkpoint.FILENAME}); start the run without --resume.")  # fmt: skip
    saved = read_json(out / CONFIG)
    first = TrainConfig.from_dict(saved["config"])
    if config is None:
        return first, saved["resolved"]
    changed = [f.name for f in dataclasses.fields(TrainConfig)
               if f.name not in RUNTIME_FIELDS and getattr(config, f.name) != getattr(first, f.name)]  # fmt: skip
    if changed:
        shown = ", ".join(f"{name} {getattr(first, name)!r} -> {getattr(config, name)!r}" for name in changed)
        raise InputError(f"--resume continues {out} as it was configured ({out / CONFIG}); it cannot change "
                         f"{shown}. Start a new run with another --out to train differently.")  # fmt: skip
    return config, saved["resolved"]


def _record(config: TrainConfig, data: ImageData, lr: float, source: str, batches: int) -> dict[str, Any]:
    normal = channel_stats(data.stats)
    return {
        "config": config.to_dict(),
        "resolved": {
            "lr": lr, "lr_source": source, "epochs": config.total_epochs, "batches_per_epoch": batches,
            "data": data.name, "classes": list(data.classes), "channels": data.channels,
            "image_size": data.image_size, "train_images": len(data.train), "test_images": len(data.test),  # type: ignore[arg-type]
            "normalize": {"mean": list(normal.mean), "std": list(normal.std), "source": normal.source},
        },
        "torch": torch.__version__,
    }  # fmt: skip
