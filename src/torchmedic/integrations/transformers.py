"""`MedicCallback`: the live training monitor inside a Hugging Face `Trainer` (optional extra `transformers`).

The Trainer runs backward and clipping, then steps the torch optimizer through accelerate's `AcceleratedOptimizer`.
The callback measures in that torch optimizer's own step hooks rather than in `on_pre_optimizer_step`: they see
the gradients the update applies (already unscaled by a fp16 GradScaler), skip a step the scaler skips, and work
with Trainers older than that event (4.40 has no optimizer events). The loss, the prediction and the labels come
from a forward hook on the model, since the Trainer's models compute their loss inside forward; a loss computed
outside it (`compute_loss_func`, label smoothing) is not seen."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchmedic.errors import InputError, TorchMedicWarning
from torchmedic.finding import Finding
from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.monitor import make_sinks, stop_causes
from torchmedic.monitor.probes.base import Handles
from torchmedic.monitor.session import Session, StopTraining
from torchmedic.signals import Signals

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as exc:  # pragma: no cover - without the extra
    raise ImportError("MedicCallback needs transformers: pip install 'torchmedic[transformers]'") from exc

log = logging.getLogger("torchmedic.monitor")
LABELS: tuple[str, ...] = ("labels",)  # the labels' key in a Trainer batch, unless `label_names` names others


def torch_optimizer(optimizer: Any) -> torch.optim.Optimizer | None:
    """The torch optimizer that updates the weights: accelerate wraps it in an `AcceleratedOptimizer` (`.optimizer`)."""
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    return optimizer if isinstance(optimizer, torch.optim.Optimizer) else None


def allow_accumulation(config: MonitorConfig, accumulation: int) -> MonitorConfig:
    """`config`, with room for the Trainer's gradient accumulation: up to twice its forwards between two steps are
    the plan, not a loop that never steps (optim.not_updating)."""
    thresholds = config.thresholds
    if 2 * accumulation <= thresholds.max_unstepped_forwards:
        return config
    return dataclasses.replace(
        config, thresholds=dataclasses.replace(thresholds, max_unstepped_forwards=2 * accumulation)
    )


class MedicCallback(TrainerCallback):
    """Watch a Hugging Face Trainer run and name the cause as soon as the model collapses.

    `Trainer(..., callbacks=[MedicCallback(log_dir="runs/medic")])`. Findings are logged (logger
    "torchmedic.monitor"), passed to `on_finding`, and kept in `callback.findings`; a finding in `stop_on` stops
    the trainer after the current step (`control.should_training_stop`). The Trainer has no event for a `train()`
    that raises: call `callback.close()` then to detach (the next `train()` also closes the old session first)."""

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
        self._handles = Handles()  # the optimizer's step hooks
        self._reader = Handles()  # the forward hook that reads loss, prediction and labels
        self._labels = LABELS
        self._stop = False  # a finding in stop_on was confirmed: stop at the end of this step

    @property
    def findings(self) -> list[Finding]:
        return [] if self._session is None else list(self._session.findings)

    @property
    def signals(self) -> Signals:
        return Signals() if self._session is None else self._session.signals

    @property
    def step(self) -> int:
        """Optimizer steps seen (the Trainer's `global_step`, when no fp16 step was skipped)."""
        return 0 if self._session is None else self._session.step

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.close()
        model, optimizer = kwargs.get("model"), torch_optimizer(kwargs.get("optimizer"))
        if not isinstance(model, nn.Module):
            raise InputError(f"MedicCallback needs the Trainer's model, a torch.nn.Module; got {type(model).__name__}.")
        if optimizer is None:
            raise InputError(f"MedicCallback needs a torch optimizer; the Trainer has {kwargs.get('optimizer')!r}.")
        config = allow_accumulation(self.config, args.gradient_accumulation_steps)
        sinks = make_sinks(self.log_dir, config, {"mode": "transformers", "model": type(model).__name__})
        self._session = Session(model, optimizer, config, on_finding=self._found, stop_on=self.stop_on, sinks=sinks)
        self._labels = tuple(args.label_names or LABELS)
        self._stop = False
        self._handles.add(optimizer.register_step_pre_hook(lambda *_: self._before_step()))
        self._handles.add(optimizer.register_step_post_hook(lambda *_: self._after_step()))
        self._reader.add(model.register_forward_hook(self._read, with_kwargs=True))
        self._session.start()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self._stop:
            self._stop = False
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.close()

    def close(self) -> None:
        """Read the last sampled step and detach every hook; safe to call twice."""
        try:
            if self._session is not None:
                self._session.close()
        finally:
            self._handles.remove()
            self._reader.remove()

    def _before_step(self) -> None:
        if self._session is None:
            return
        try:
            self._session.before_step()
        except StopTraining as stop:
            log.warning("%s", stop)
            self._stop = True

    def _after_step(self) -> None:
        if self._session is not None:
            self._session.after_step()

    def _read(self, module: nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        """Give the session the loss the model computed, its prediction and the labels of a training forward."""
        if self._session is None or not torch.is_grad_enabled():
            return
        try:
            if isinstance(output, Mapping):
                loss = output.get("loss")
                prediction = {key: value for key, value in output.items() if key != "loss"}
            else:
                loss, prediction = getattr(output, "loss", None), output
            labels = next((kwargs[k] for k in self._labels if isinstance(kwargs.get(k), torch.Tensor)), None)
            self._session.log(loss=loss, outputs=prediction, targets=labels)
        except Exception as exc:
            self._reader.remove()
            warnings.warn(
                f"MedicCallback stopped reading the model's loss: {type(exc).__name__}: {exc}",
                TorchMedicWarning,
                stacklevel=2,
            )

    def _found(self, finding: Finding) -> None:
        log.warning("torchmedic: step %s: %s: %s", finding.step, finding.cause, finding.summary)
        if self.on_finding is not None:
            self.on_finding(finding)
