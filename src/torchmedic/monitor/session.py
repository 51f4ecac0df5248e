"""The engine of the training monitor: training events in, findings out.

Probes measure on sampled steps; a step's record closes at the next optimizer step (so that `log()` may come
before or after `step()`), is read with one device sync, gains the run-level view of `History`, and the live
rules judge it. A finding is reported once, when its rule has held on `confirm` consecutive sampled steps."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import nn

import torchmedic.rules  # noqa: F401  (registers the live rules)
from torchmedic import signal_names as N
from torchmedic.batch import primary_output
from torchmedic.errors import TorchMedicError, TorchMedicWarning
from torchmedic.finding import Finding
from torchmedic.monitor import distributed
from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.context import Context
from torchmedic.monitor.history import History
from torchmedic.monitor.probes.activations import ActivationProbe
from torchmedic.monitor.probes.base import Handles, Probe
from torchmedic.monitor.probes.batchnorm import BatchNormProbe
from torchmedic.monitor.probes.carried_grads import CarriedGradProbe
from torchmedic.monitor.probes.final_module import FinalModuleProbe
from torchmedic.monitor.probes.grads import GradProbe
from torchmedic.monitor.probes.inputs import InputProbe
from torchmedic.monitor.probes.loading import LoadEvent, LoadProbe
from torchmedic.monitor.probes.mode import ModeProbe
from torchmedic.monitor.probes.optimizer import OptimizerProbe
from torchmedic.monitor.probes.outputs import OutputProbe, candidates, settle_output
from torchmedic.monitor.probes.updates import UpdateProbe
from torchmedic.monitor.record import SUM, StepRecord
from torchmedic.rules.registry import Rule, rules_for
from torchmedic.signals import Signals

log = logging.getLogger("torchmedic.monitor")
STEPLESS_CAUSE = "optim.not_updating"  # the one cause a loop without optimizer steps can show


class StopTraining(TorchMedicError):
    """Raised out of `optimizer.step()` when a finding named in `stop_on` is confirmed; `Monitor` swallows it at
    the end of its `with` block."""

    def __init__(self, finding: Finding | None) -> None:
        what = f"{finding.cause} at step {finding.step}: {finding.summary}" if finding else "rank 0 asked to stop"
        super().__init__(f"training stopped by torchmedic: {what}")
        self.finding = finding


class Sink(Protocol):
    """Where sampled steps and findings go (an event log, TensorBoard); only rank 0 has sinks."""

    def step(self, step: int, signals: Signals) -> None: ...

    def finding(self, finding: Finding) -> None: ...

    def close(self, findings: list[Finding]) -> None: ...


class Session:
    """One monitored (model, optimizer) pair, driven by `before_step`, `after_step` and `log`."""

    def __init__(
        self,
        model: nn.Module | None,
        optimizer: torch.optim.Optimizer | None,
        config: MonitorConfig,
        *,
        on_finding: Callable[[Finding], Any] | None = None,
        stop_on: Iterable[str] = (),
        sinks: Iterable[Sink] = (),
        loads: list[LoadEvent] | None = None,
    ) -> None:
        self.config = config
        self.ctx = Context(model, optimizer, config, self._probe_failed, self._stepless)
        self.probes: list[Probe] = [
            LoadProbe(self.ctx, loads),
            ModeProbe(self.ctx),
            OptimizerProbe(self.ctx),
            GradProbe(self.ctx),
            CarriedGradProbe(self.ctx),
            ActivationProbe(self.ctx),
            BatchNormProbe(self.ctx),
            InputProbe(self.ctx),
            OutputProbe(self.ctx),
            FinalModuleProbe(self.ctx),
        ]
        if config.updates:
            self.probes.append(UpdateProbe(self.ctx))
        self.history = History(config)
        self.rules: list[Rule] = rules_for("live")
        self.on_finding = on_finding
        self.stop_on = set(stop_on)
        self.sinks = list(sinks)
        self.records: list[StepRecord] = []  # sampled steps whose record is still open, oldest first
        self.armed: StepRecord | None = None  # the record of the step in progress, when it is sampled
        self.findings: list[Finding] = []
        self.signals = Signals()  # of the latest sampled step
        self.active = False
        self._streaks: dict[str, int] = {}
        self._stop_finding: Finding | None = None  # a finding in stop_on, confirmed on rank 0
        self._stopping = False  # every rank knows: stop at the next optimizer step
        self._backward_hooks = Handles()  # counts backward passes while forwards pile up without a step
        self._backwards = 0

    @property
    def step(self) -> int:
        """Optimizer steps taken."""
        return self.ctx.step

    @step.setter
    def step(self, value: int) -> None:
        self.ctx.step = value

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.active = True
        for probe in list(self.probes):
            self._call(probe, "attach")
        self._arm(1)

    def close(self) -> None:
        """Read the last sampled step, then remove every hook; safe to call twice."""
        if not self.active:
            return
        try:
            for probe in list(self.probes):
                self._call(probe, "disarm")
            if self.armed is not None:  # the step it was armed for never happened
                self.records.remove(self.armed)
                self.armed = None
            self._resolve(upto=self.step)
        except Exception as exc:
            self._warn(f"the training monitor failed while closing: {type(exc).__name__}: {exc}")
        finally:
            self._detach()
            for sink in self.sinks:
                try:
                    sink.close(self.findings)
                except Exception as exc:
                    self._warn(f"could not close {type(sink).__name__}: {exc}")

    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        """Watch `optimizer` (found after the start, when the monitor was given a model only)."""
        model, step = self.ctx.model, self.ctx.step
        self.ctx = Context(model, optimizer, self.config, self._probe_failed, self._stepless)
        self.ctx.step = step
        for probe in self.probes:
            probe.ctx = self.ctx

    # ---- training events ---------------------------------------------------------------------------------------
    def before_step(self) -> None:
        """Gradients are ready and the optimizer is about to update: close earlier records, read this step."""
        if not self.active:
            return
        try:
            self._resolve(upto=self.step)
            if self.armed is not None and self.armed.step == self.step + 1:
                for probe in list(self.probes):
                    self._call(probe, "before_step", self.armed)
        except Exception as exc:
            self._fail(exc)
        if self._stopping and self.active:
            self._stopping = False
            raise StopTraining(self._stop_finding)

    def after_step(self) -> None:
        """The optimizer has updated: finish this step's measurements, arm the next sampled step."""
        if not self.active:
            return
        try:
            self.step += 1
            self.model_stepped()
            if self.armed is not None and self.armed.step == self.step:
                for probe in list(self.probes):
                    self._call(probe, "after_step", self.armed)
                for probe in list(self.probes):
                    self._call(probe, "disarm")
                self.armed = None
            self._arm(self.step + 1)
        except Exception as exc:
            self._fail(exc)

    def model_stepped(self) -> None:
        """An optimizer holding the model's parameters (this one or another) stepped: the loop does step."""
        self.ctx.unstepped = self.ctx.foreign_steps = self.ctx.skipped_steps = 0
        self._backward_hooks.remove()

    def foreign_step(self) -> None:
        """An optimizer that holds none of the model's parameters stepped."""
        self.ctx.foreign_steps += 1

    def step_skipped(self, scale: float) -> None:
        """A GradScaler skipped this model's step (its gradients held inf or NaN at loss scale `scale`)."""
        self.ctx.skipped_steps += 1
        self.ctx.loss_scale = scale

    def log(self, loss: Any = None, outputs: Any = None, targets: Any = None, loss_kind: str | None = None) -> None:
        """Give the open sampled step the loss, the model's outputs and the targets (all optional)."""
        if not self.active:
            return
        step = self.ctx.forward_step  # the step whose forward made these outputs (None: the forward is not seen)
        record = next((r for r in self.records if not r.logged and step in (None, r.step)), None)
        if record is None:
            return
        try:
            record.logged = True
            out = primary_output(outputs) if outputs is not None else None
            if isinstance(out, torch.Tensor):
                record.outputs, record.candidates = out.detach(), candidates(outputs, out)
            if isinstance(loss, torch.Tensor):
                settle_output(record, loss, self.ctx)
                record.loss = loss.detach()
            elif isinstance(loss, (int, float)):
                record.loss = torch.tensor(float(loss))
            if isinstance(targets, torch.Tensor):
                record.targets = targets.detach()
            record.loss_kind = loss_kind
        except Exception as exc:
            self._fail(exc)

    # ---- internals ----------------------------------------------------------------------------------------------
    def _stepless(self) -> None:
        """Training forwards pile up and no optimizer step closes a record: judge what can be judged without one.
        The first check only starts counting backward passes (a gradient hook on one parameter, removed at the
        next step); later checks need them: forwards without backward are an evaluation, not a training loop."""
        model = self.ctx.model
        if not self.active or model is None:
            return
        if not len(self._backward_hooks):
            trained = next((p for p in model.parameters() if p.requires_grad), None)
            if trained is not None:
                self._backwards = 0
                self._backward_hooks.add(trained.register_hook(self._backward_seen))
        signals = Signals()
        signals.emit(N.MONITOR_UNSTEPPED_FORWARDS, self.ctx.unstepped)
        signals.emit(N.MONITOR_FOREIGN_STEPS, self.ctx.foreign_steps)
        signals.emit(N.MONITOR_SKIPPED_STEPS, self.ctx.skipped_steps)
        if self.ctx.loss_scale is not None:
            signals.emit(N.MONITOR_LOSS_SCALE, self.ctx.loss_scale)
        signals.emit(N.MONITOR_STEP, self.step)
        signals.emit(N.GRAD_BACKWARDS, self._backwards)
        self._judge(signals, self.step, [r for r in self.rules if r.cause == STEPLESS_CAUSE])

    def _backward_seen(self, grad: torch.Tensor) -> None:
        self._backwards += 1

    def _arm(self, step: int) -> None:
        if not self.config.sampled(step):
            return
        self.armed = StepRecord(step)
        self.records.append(self.armed)
        for probe in list(self.probes):
            self._call(probe, "arm", self.armed)

    def _resolve(self, upto: int) -> None:
        """Close the records of steps up to `upto`: one device sync (and one all-reduce) each, then the rules."""
        while self.records and self.records[0].step <= upto and self.records[0] is not self.armed:
            record = self.records.pop(0)
            for probe in list(self.probes):
                self._call(probe, "finish", record)
            rank, world = distributed.rank(), distributed.world_size()
            if world > 1:  # every rank must stop at the same step, so the decision travels with the statistics
                record.put(N.MONITOR_STOP, torch.tensor(float(self._stop_finding is not None)), across=SUM)
            signals = record.resolve(distributed.all_reduce_sum if world > 1 else None, world)
            self._stopping = self._stopping or signals.get(N.MONITOR_STOP, 0.0) > 0
            self.history.update(signals, record.step)
            self.signals = signals
            if rank == 0:
                self._judge(signals, record.step)
                self._to_sinks("step", record.step, signals)

    def _judge(self, signals: Signals, step: int, rules: list[Rule] | None = None) -> None:
        reported = {f.cause for f in self.findings}
        for rule in list(self.rules if rules is None else rules):
            try:
                finding = rule(signals, self.config.thresholds)
            except Exception as exc:
                self.rules.remove(rule)
                self._warn(f"live rule {rule.cause} failed at step {step} and is disabled: {type(exc).__name__}: {exc}")
                continue
            streak = self._streaks.get(rule.cause, 0) + 1 if finding is not None else 0
            self._streaks[rule.cause] = streak
            if finding is None or streak < self.config.confirm or rule.cause in reported:
                continue
            finding.step = step
            self.findings.append(finding)
            log.info("step %d: %s: %s", step, finding.cause, finding.summary)
            self._to_sinks("finding", finding)
            if self.on_finding is not None:
                try:
                    self.on_finding(finding)
                except Exception as exc:
                    self._warn(f"on_finding raised {type(exc).__name__}: {exc}")
            if rule.cause in self.stop_on and self._stop_finding is None:
                self._stop_finding = finding
                self._stopping = distributed.world_size() == 1  # else after the next all-reduce, on every rank

    def _to_sinks(self, event: str, *args: Any) -> None:
        """A sink that fails (disk full, closed file) is dropped with a warning; monitoring goes on."""
        for sink in list(self.sinks):
            try:
                getattr(sink, event)(*args)
            except Exception as exc:
                self.sinks.remove(sink)
                self._warn(f"{type(sink).__name__} failed and is dropped: {type(exc).__name__}: {exc}")

    def _call(self, probe: Probe, event: str, *args: Any) -> None:
        try:
            getattr(probe, event)(*args)
        except Exception as exc:
            self._probe_failed(probe, exc)

    def _probe_failed(self, probe: object, exc: BaseException) -> None:
        if probe in self.probes:
            self.probes.remove(probe)
            self._warn(
                f"monitor probe '{getattr(probe, 'name', probe)}' failed and is disabled: {type(exc).__name__}: {exc}"
            )
        detach = getattr(probe, "detach", None)
        if detach is not None:
            try:
                detach()
            except Exception as inner:
                log.debug("detaching probe failed: %s", inner)

    def _fail(self, exc: BaseException) -> None:
        self._warn(f"the training monitor failed and is disabled: {type(exc).__name__}: {exc}")
        self._detach()

    def _detach(self) -> None:
        self._backward_hooks.remove()
        for probe in self.probes:
            try:
                probe.detach()
            except Exception as exc:
                log.debug("detaching probe %s failed: %s", probe.name, exc)
        self.records, self.armed, self.active = [], None, False

    @staticmethod
    def _warn(message: str) -> None:
        warnings.warn(message, TorchMedicWarning, stacklevel=3)
