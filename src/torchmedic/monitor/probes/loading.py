"""What `load_state_dict` loaded into the model: keys expected, missing and unexpected."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from torchmedic import signal_names as N
from torchmedic.monitor.context import Context, unwrap
from torchmedic.monitor.probes.base import Probe
from torchmedic.monitor.record import StepRecord

MAX_KEYS = 3  # example keys quoted as evidence


@dataclass
class LoadEvent:
    """One `load_state_dict` call: into which module, how many keys it expected, which it did not get."""

    module: weakref.ref[nn.Module]
    expected: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    strict: bool = True

    @classmethod
    def of(cls, module: nn.Module, result: Any, strict: bool) -> LoadEvent:
        """From the module and what its `load_state_dict` returned (missing and unexpected keys)."""
        missing = list(getattr(result, "missing_keys", []))
        unexpected = list(getattr(result, "unexpected_keys", []))
        return cls(weakref.ref(module), len(module.state_dict()), missing, unexpected, strict)

    @property
    def missing_fraction(self) -> float:
        return len(self.missing) / self.expected if self.expected else 0.0


class LoadProbe(Probe):
    """A `load_state_dict` post-hook on the model, plus loads reported from outside (`torchmedic run` watches
    every module, also before the monitor starts)."""

    name = "loading"

    def __init__(self, ctx: Context, events: list[LoadEvent] | None = None) -> None:
        super().__init__(ctx)
        self.events: list[LoadEvent] = events if events is not None else []

    def attach(self) -> None:
        model = self.ctx.model
        if model is not None:
            self.permanent.add(model.register_load_state_dict_post_hook(self.guarded(self._loaded)))

    def _loaded(self, module: nn.Module, result: Any) -> None:
        self.events.append(LoadEvent.of(module, result, strict=False))

    def before_step(self, record: StepRecord) -> None:
        model = self.ctx.model
        if model is None or not self.events:
            return
        mine = {id(m): name for name, m in unwrap(model).named_modules()}
        mine.setdefault(id(model), "")
        relevant = [(e, mine[id(m)]) for e in self.events if (m := e.module()) is not None and id(m) in mine]
        if not relevant:
            return
        event, where = max(relevant, key=lambda pair: pair[0].missing_fraction)
        record.note(N.LOAD_MISSING_FRACTION, event.missing_fraction)
        record.note(N.LOAD_EXPECTED, event.expected)
        record.note(N.LOAD_MISSING, len(event.missing))
        record.note(N.LOAD_UNEXPECTED, len(event.unexpected))
        record.note(N.LOAD_MISSING_KEYS, event.missing[:MAX_KEYS])
        record.note(N.LOAD_UNEXPECTED_KEYS, event.unexpected[:MAX_KEYS])
        record.note(N.LOAD_MODULE, where)
        record.note(N.LOAD_STRICT, event.strict)
