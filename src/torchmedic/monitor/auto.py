"""Monitoring for a script that knows nothing about torchmedic (`torchmedic run train.py`).

Global optimizer step hooks find every optimizer; the model is the module whose forward ran with the optimizer's
parameters; the loss functions of `torch.nn.functional` and `nn.Module.load_state_dict` are wrapped to see the
loss, outputs and targets, and what each load matched. Everything is restored in `close()`."""

from __future__ import annotations

import functools
import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from torchmedic.finding import Finding
from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.monitor import make_sinks
from torchmedic.monitor.probes.base import Handles
from torchmedic.monitor.probes.loading import LoadEvent
from torchmedic.monitor.scaler import ScalerWatch
from torchmedic.monitor.session import Session, Sink
from torchmedic.signals import Signals

log = logging.getLogger("torchmedic.monitor")

LOSSES = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
)
DISCOVERY_STEPS = 3  # optimizer steps during which global forward hooks look for the model (then removed)
MAX_CANDIDATES = 8  # top-level modules remembered while looking for the model
MAX_LOADS = 64  # load_state_dict calls remembered
STEPLESS_WATCH = 16  # training forwards of a model before any optimizer step: watch it as a loop that may never step


class _Shared:
    """A sink shared by every session of a run: sessions report to it, only the run closes it."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def step(self, step: int, signals: Signals) -> None:
        self.sink.step(step, signals)

    def finding(self, finding: Finding) -> None:
        self.sink.finding(finding)

    def close(self, findings: list[Finding]) -> None:
        """Closed by AutoMonitor.close, once."""


class AutoMonitor:
    """Watches every optimizer of the process, one session per optimizer, from `start()` to `close()`."""

    def __init__(
        self,
        config: MonitorConfig | None = None,
        *,
        log_dir: str | Path | None = None,
        on_finding: Callable[[Finding], Any] | None = None,
        stop_on: Iterable[str] = (),
    ) -> None:
        self.config = config or MonitorConfig()
        self.log_dir = log_dir
        self.on_finding = on_finding
        self.stop_on = set(stop_on)
        self.sessions: list[tuple[weakref.ref[torch.optim.Optimizer], Session]] = []
        self.loads: list[LoadEvent] = []
        self._candidates: OrderedDict[int, weakref.ref[nn.Module]] = OrderedDict()
        self._depth = 0
        self._discovery_steps = 0
        self._waiting: dict[int, int] = {}  # id(optimizer) -> steps taken while its model is looked for
        self._pending: tuple[Any, Any, Any, str] | None = None  # the latest loss call before any session
        self._unstepped: dict[int, int] = {}  # id(module) -> training forwards before any optimizer step
        self.stepless: Session | None = None  # watches a model that trains without any optimizer step
        self._sinks: list[Sink] = []
        self._skipped: tuple[int, float | None] = (0, None)  # GradScaler skips (and scale) before any session
        self._scalers = ScalerWatch(self._step_skipped)
        self._hooks, self._discovery = Handles(), Handles()
        self._patched: list[tuple[Any, str, Any]] = []

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._sinks = make_sinks(self.log_dir, self.config, {"mode": "torchmedic run"})
        self._hooks.add(register_optimizer_step_pre_hook(self._before_step))
        self._hooks.add(register_optimizer_step_post_hook(self._after_step))
        self._discover()
        for name in LOSSES:
            self._patch(F, name, self._loss_wrapper(name, getattr(F, name)))
        self._patch(nn.Module, "load_state_dict", self._load_wrapper(nn.Module.load_state_dict))
        self._scalers.install()

    def close(self) -> None:
        """Close every session (reading its last sampled step), remove the hooks and undo the patches."""
        try:
            for _, session in self.sessions:
                session.close()
            if self.stepless is not None:
                self.stepless.close()
        finally:
            self._hooks.remove()
            self._discovery.remove()
            self._scalers.remove()
            while self._patched:
                owner, name, original = self._patched.pop()
                setattr(owner, name, original)
            for sink in self._sinks:
                try:
                    sink.close(self.findings)
                except Exception as exc:
                    log.warning("could not close %s: %s", type(sink).__name__, exc)
            self._sinks = []

    @property
    def findings(self) -> list[Finding]:
        found = [f for _, session in self.sessions for f in session.findings]
        found += self.stepless.findings if self.stepless is not None else []
        return sorted(found, key=lambda f: f.step or 0)

    @property
    def steps(self) -> int:
        return max((session.step for _, session in self.sessions), default=0)

    # ---- optimizer events ---------------------------------------------------------------------------------------
    def _session(self, optimizer: torch.optim.Optimizer) -> Session | None:
        """The optimizer's session; a new optimizer gets one once the model that runs with it is known."""
        for ref, session in self.sessions:
            if ref() is optimizer:
                return session
        key = id(optimizer)
        if not len(self._discovery):  # found after discovery ended: look for its model during its next step
            self._discover()
            self._waiting[key] = 0
            return None
        if key in self._waiting and not self._candidates:
            return None
        if self.stepless is not None:  # an optimizer steps after all: its session takes over
            self.stepless.close()
        session = Session(
            self._model_of(optimizer),
            optimizer,
            self.config,
            on_finding=self.on_finding,
            stop_on=self.stop_on,
            sinks=[_Shared(s) for s in self._sinks],
            loads=self.loads,
        )
        session.step = self._waiting.pop(key, 0)  # steps it took before its model was found
        self.sessions.append((weakref.ref(optimizer), session))
        session.start()
        if self._pending is not None:  # the loss of this very step, computed before the optimizer was known
            session.log(*self._pending[:3], loss_kind=self._pending[3])
            self._pending = None
        return session

    def _model_of(self, optimizer: torch.optim.Optimizer) -> nn.Module | None:
        """The top-level module that shares most parameters with the optimizer; if none shares any, the one that
        ran last (the optimizer then belongs to a model that no longer runs)."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        alive = [m for ref in reversed(self._candidates.values()) if (m := ref()) is not None]
        if not alive:
            return None
        overlap = [(sum(id(p) in held for p in m.parameters()), m) for m in alive]
        best = max(overlap, key=lambda pair: pair[0])
        return best[1] if best[0] > 0 else alive[0]

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        session = self._session(optimizer)
        if session is not None:
            session.before_step()

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        session = self._session(optimizer)
        if session is not None:
            session.after_step()
            for _, other in self.sessions:  # the model stepped, whichever of its optimizers did it
                if other is not session and other.ctx.model is session.ctx.model:
                    other.model_stepped()
        elif id(optimizer) in self._waiting:
            self._waiting[id(optimizer)] += 1
        self._discovery_steps += 1
        if self._discovery_steps >= DISCOVERY_STEPS and len(self._discovery) and not self._waiting:
            self._discovery.remove()
            self._candidates.clear()

    def _step_skipped(self, optimizer: torch.optim.Optimizer, scale: float) -> None:
        """A GradScaler skipped `optimizer`'s step: its session counts it, else the stepless one, else it is kept
        for the session that will watch the model."""
        session = next((s for ref, s in self.sessions if ref() is optimizer), self.stepless)
        if session is not None:
            session.step_skipped(scale)
        else:
            self._skipped = (self._skipped[0] + 1, scale)

    def _discover(self) -> None:
        """Install the global forward hooks that find top-level modules (they slow every module call a little)."""
        self._discovery_steps = 0
        self._discovery.add(register_module_forward_pre_hook(self._enter))
        self._discovery.add(register_module_forward_hook(self._leave, always_call=True))

    # ---- forward discovery ----------------------------------------------------------------------------------------
    def _enter(self, module: nn.Module, args: Any) -> None:
        if self._depth == 0 and next(module.parameters(), None) is not None:
            self._candidates[id(module)] = weakref.ref(module)
            self._candidates.move_to_end(id(module))
            while len(self._candidates) > MAX_CANDIDATES:
                self._candidates.popitem(last=False)
            if torch.is_grad_enabled() and not self.sessions and not self._waiting and self.stepless is None:
                count = self._unstepped[id(module)] = self._unstepped.get(id(module), 0) + 1
                if count >= STEPLESS_WATCH:
                    self._watch_stepless(module, count)
        self._depth += 1

    def _watch_stepless(self, model: nn.Module, forwards: int) -> None:
        """A session without an optimizer for a model that keeps running forward while nothing steps: it names a
        loop that never calls step() (its own forward hook counts on from here)."""
        sinks = [_Shared(s) for s in self._sinks]
        self.stepless = Session(model, None, self.config, on_finding=self.on_finding, stop_on=self.stop_on, sinks=sinks)
        self.stepless.start()
        self.stepless.ctx.unstepped = forwards - 1  # this forward's own hook, just attached, counts it again
        self.stepless.ctx.skipped_steps, self.stepless.ctx.loss_scale = self._skipped
        self._unstepped.clear()

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self._depth = max(0, self._depth - 1)

    # ---- patched functions ----------------------------------------------------------------------------------------
    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def _loss_wrapper(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def loss(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            try:
                if torch.is_grad_enabled() and isinstance(result, torch.Tensor) and result.requires_grad:
                    outputs = args[0] if args else kwargs.get("input")
                    targets = args[1] if len(args) > 1 else kwargs.get("target")
                    self._loss_seen(result, outputs, targets, kind)
            except Exception as exc:
                log.warning("torchmedic could not read the loss (%s: %s)", type(exc).__name__, exc)
            return result

        return loss

    def _loss_seen(self, loss: torch.Tensor, outputs: Any, targets: Any, kind: str) -> None:
        live = [s for _, s in self.sessions if s.active and s.ctx.model is not None]
        if not live:
            keep = [v.detach() if isinstance(v, torch.Tensor) else v for v in (loss, outputs, targets)]
            self._pending = (keep[0], keep[1], keep[2], kind)  # detached: the graph is not kept alive
            return
        max(live, key=lambda s: s.ctx.last_forward).log(loss, outputs, targets, loss_kind=kind)

    def _load_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def load_state_dict(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            result = original(module, *args, **kwargs)
            try:
                strict = kwargs.get("strict", args[1] if len(args) > 1 else True)
                self.loads.append(LoadEvent.of(module, result, bool(strict)))
                del self.loads[:-MAX_LOADS]
            except Exception as exc:
                log.warning("torchmedic could not read load_state_dict's result (%s: %s)", type(exc).__name__, exc)
            return result

        return load_state_dict
