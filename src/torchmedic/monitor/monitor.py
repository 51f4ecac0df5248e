"""`Monitor`: watch the user's own training loop and name the cause the moment the model collapses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from torchmedic.causes import CAUSES
from torchmedic.errors import InputError
from torchmedic.finding import Finding
from torchmedic.monitor import distributed
from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.events import EventLog
from torchmedic.monitor.probes.base import Handles
from torchmedic.monitor.probes.loading import LoadEvent
from torchmedic.monitor.scaler import ScalerWatch
from torchmedic.monitor.session import Session, Sink, StopTraining
from torchmedic.monitor.tensorboard import TensorBoardLog, tensorboard_writer
from torchmedic.signals import Signals


def stop_causes(stop_on: bool | str | Iterable[str] | None) -> set[str]:
    """The cause codes that stop training: True or "any" means all of them."""
    if stop_on is None or stop_on is False:
        return set()
    if stop_on is True or stop_on == "any":
        return set(CAUSES)
    codes = {stop_on} if isinstance(stop_on, str) else set(stop_on)
    unknown = sorted(codes - set(CAUSES))
    if unknown:
        raise InputError(f"stop_on names unknown cause codes {unknown}; known codes: {', '.join(CAUSES)}")
    return codes


def make_sinks(log_dir: str | Path | None, config: MonitorConfig, header: dict[str, Any]) -> list[Sink]:
    """The JSONL event log and, when installed and enabled, TensorBoard; nothing without a log_dir or off rank 0."""
    if log_dir is None or distributed.rank() != 0:
        return []
    sinks: list[Sink] = [EventLog(log_dir, header)]
    writer = tensorboard_writer(log_dir) if config.tensorboard else None
    if writer is not None:
        sinks.append(TensorBoardLog(writer))
    return sinks


class Monitor:
    """Watch a training loop and name the cause as soon as the model collapses (same output for every input,
    stuck loss), at almost no cost to training.

    It attaches to the optimizer's step hooks and measures on sampled steps only (the first few, then one in
    `every`); findings are reported once, when confirmed, with the step::

        with torchmedic.Monitor(model, optimizer, log_dir="runs/medic") as monitor:
            for x, y in loader:
                optimizer.zero_grad()
                out = model(x)
                loss = loss_fn(out, y)
                loss.backward()
                optimizer.step()
                monitor.log(loss=loss, outputs=out, targets=y)  # optional; outputs and targets reveal collapse
        print(monitor.findings)

    `optimizer=None` watches whichever optimizer holds the model's parameters. `on_finding` is called with each
    confirmed finding; `stop_on` (cause codes, or True for any) raises `StopTraining` out of `optimizer.step()`,
    which the `with` block swallows. The monitor never changes training results, never raises otherwise (a
    failing probe disables itself with a warning) and never keeps the model alive.

    Under DistributedDataParallel every rank runs the monitor: statistics are reduced with one all-reduce per
    sampled step, findings and logs come from rank 0. Call `log()` on every rank (or on none): the ranks must
    reduce the same statistics. Evaluation may run on rank 0 only.

    Between sampled steps the monitor keeps one forward pre-hook on the model (a few microseconds per forward):
    it samples evaluation batches and ties `log()` calls to the step of their forward."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        log_dir: str | Path | None = None,
        every: int | None = None,
        on_finding: Callable[[Finding], Any] | None = None,
        stop_on: bool | str | Iterable[str] | None = None,
        config: MonitorConfig | None = None,
        loads: list[LoadEvent] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InputError(f"model is a {type(model).__name__}, not a torch.nn.Module.")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(f"optimizer is a {type(optimizer).__name__}, not a torch.optim.Optimizer.")
        config = config or MonitorConfig()
        self.config = config if every is None else dataclasses.replace(config, every=every)
        self.log_dir = log_dir
        header = {
            "model": type(model).__name__,
            "optimizer": type(optimizer).__name__ if optimizer else None,
            "config": {k: v for k, v in dataclasses.asdict(self.config).items() if k != "rules"},
        }
        self._session = Session(
            model, optimizer, self.config, on_finding=on_finding, stop_on=stop_causes(stop_on), sinks=(), loads=loads
        )
        self._header = header
        self._handles = Handles()
        self._scalers = ScalerWatch(self._step_skipped)
        self._bound = optimizer is not None
        self._started = False

    # ---- context manager ------------------------------------------------------------------------------------------
    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.close()
        return isinstance(exc, StopTraining)

    def start(self) -> None:
        """Attach to the optimizer (or to every optimizer until one holding the model's parameters steps)."""
        if self._started:
            return
        self._started = True
        self._session.sinks = make_sinks(self.log_dir, self.config, self._header)
        optimizer = self._session.ctx.optimizer
        if optimizer is not None:
            self._handles.add(optimizer.register_step_pre_hook(self._before_step))
            self._handles.add(optimizer.register_step_post_hook(self._after_step))
        else:
            self._handles.add(register_optimizer_step_pre_hook(self._before_step))
            self._handles.add(register_optimizer_step_post_hook(self._after_step))
        self._scalers.install()
        self._session.start()

    def close(self) -> None:
        """Read the last sampled step and detach every hook (also called by the end of the `with` block)."""
        try:
            self._session.close()
        finally:
            self._handles.remove()
            self._scalers.remove()

    # ---- what the loop calls ------------------------------------------------------------------------------------
    def log(self, loss: Any = None, outputs: Any = None, targets: Any = None) -> None:
        """Hand the monitor this step's loss, model outputs and targets (each optional; call before or after
        `optimizer.step()`). Costs nothing on steps that are not sampled."""
        self._session.log(loss, outputs, targets)

    @property
    def findings(self) -> list[Finding]:
        """Confirmed findings, in the order they were confirmed."""
        return list(self._session.findings)

    @property
    def signals(self) -> Signals:
        """Every measurement of the latest sampled step (with the run-level view)."""
        return self._session.signals

    @property
    def step(self) -> int:
        """Optimizer steps seen so far."""
        return self._session.step

    @property
    def healthy(self) -> bool:
        return not self._session.findings

    # ---- optimizer hooks ----------------------------------------------------------------------------------------
    def _watches(self, optimizer: torch.optim.Optimizer) -> bool:
        if self._bound:
            return optimizer is self._session.ctx.optimizer
        model = self._session.ctx.model
        if model is None:
            return False
        own = {id(p) for p in model.parameters()}
        if not any(id(p) in own for group in optimizer.param_groups for p in group["params"]):
            return False
        self._session.bind(optimizer)
        self._bound = True
        return True

    def _step_skipped(self, optimizer: torch.optim.Optimizer, scale: float) -> None:
        if self._watches(optimizer):
            self._session.step_skipped(scale)

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self._watches(optimizer):
            self._session.before_step()
            return
        model = self._session.ctx.model
        own = set() if model is None else {id(p) for p in model.parameters()}
        if any(id(p) in own for group in optimizer.param_groups for p in group["params"]):
            self._session.model_stepped()  # a second optimizer of the same model (another part, another phase)
        elif not self._bound:  # no optimizer of the model has stepped yet: this may be the one it should use
            self._session.foreign_step()

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self._watches(optimizer):
            self._session.after_step()
