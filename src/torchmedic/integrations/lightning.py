"""`MedicCallback`: the live training monitor inside a Lightning `Trainer` (optional extra `lightning`).

Lightning runs forward and backward inside `optimizer.step(closure)`, so the optimizer's pre-step hook fires
before there are gradients; the callback reads them in `on_before_optimizer_step` instead."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from torchmedic.batch import unpack
from torchmedic.errors import InputError
from torchmedic.finding import Finding
from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.monitor import make_sinks, stop_causes
from torchmedic.monitor.probes.base import Handles
from torchmedic.monitor.session import Session, StopTraining
from torchmedic.signals import Signals

try:
    from lightning.pytorch import LightningModule, Trainer
    from lightning.pytorch.callbacks import Callback
except ImportError as exc:  # pragma: no cover - without the extra
    raise ImportError("MedicCallback needs Lightning: pip install 'torchmedic[lightning]'") from exc

log = logging.getLogger("torchmedic.monitor")


class MedicCallback(Callback):
    """Watch a Lightning training run and name the cause as soon as the model collapses.

    `trainer = Trainer(callbacks=[MedicCallback(log_dir="runs/medic")])`. Findings are logged (logger
    "torchmedic.monitor"), passed to `on_finding`, and kept in `callback.findings`; a finding in `stop_on` stops
    the trainer (`trainer.should_stop`). The first optimizer of `configure_optimizers` is watched."""

    def __init__(
        self,
        *,
        log_dir: str | Path | None = None,
        every: int | None = None,
        on_finding: Callable[[Finding], Any] | None = None,
        stop_on: bool | str | Iterable[str] | None = None,
        config: MonitorConfig | None = None,
    ) -> None:
        super().__init__()
        config = config or MonitorConfig()
        self.config = config if every is None else dataclasses.replace(config, every=every)
        self.log_dir = log_dir
        self.on_finding = on_finding
        self.stop_on = stop_causes(stop_on)
        self._session: Session | None = None
        self._handles = Handles()

    @property
    def findings(self) -> list[Finding]:
        return [] if self._session is None else list(self._session.findings)

    @property
    def signals(self) -> Signals:
        return Signals() if self._session is None else self._session.signals

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.optimizers:
            raise InputError("MedicCallback needs an optimizer: configure_optimizers returned none.")
        optimizer = trainer.optimizers[0]
        sinks = make_sinks(self.log_dir, self.config, {"mode": "lightning", "model": type(pl_module).__name__})
        self._session = Session(
            pl_module, optimizer, self.config, on_finding=self._found, stop_on=self.stop_on, sinks=sinks
        )
        self._handles.add(optimizer.register_step_post_hook(lambda *_: self._after_step()))
        self._session.start()

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self._session is None or optimizer is not self._session.ctx.optimizer:
            return
        try:
            self._session.before_step()
        except StopTraining as stop:
            log.warning("%s", stop)
            trainer.should_stop = True

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._session is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        try:
            targets = unpack(batch).targets
        except InputError:
            targets = None
        self._session.log(loss=loss, targets=targets)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._close()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._close()  # also after an exception in fit

    def _after_step(self) -> None:
        if self._session is not None:
            self._session.after_step()

    def _found(self, finding: Finding) -> None:
        log.warning("torchmedic: step %s: %s: %s", finding.step, finding.cause, finding.summary)
        if self.on_finding is not None:
            self.on_finding(finding)

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._handles.remove()
