"""What the probes measure on one sampled step, kept on the device until one sync reads it all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from torchmedic import signal_names as N
from torchmedic.signals import Signals, Value
from torchmedic.stats import without_history

Key = tuple[N.Name, str]  # (signal name, scope)
MEAN, SUM, LOCAL = "mean", "sum", "local"  # across ranks: averaged, added up (counts), or this rank's own


@dataclass
class StepRecord:
    """Measurements of sampled step `step`: tensors (read in one batch by `resolve`) and plain Python values.

    The user's `log()` call and the model's forward fill `loss`, `outputs`, `targets`; probes turn them into
    statistics when the record closes."""

    step: int
    tensors: dict[Key, tuple[torch.Tensor, str]] = field(default_factory=dict)  # value, how ranks combine it
    scopes: dict[N.Name, list[str]] = field(default_factory=dict)  # name -> scope of each entry of a per-layer vector
    values: dict[Key, Value] = field(default_factory=dict)
    loss: torch.Tensor | None = None
    outputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    loss_kind: str | None = None
    candidates: list[tuple[Any, torch.Tensor]] = field(default_factory=list)  # several output tensors: the loss's
    # graph tells which one is the prediction (they are kept, undetached, only until `log()` sees the loss)
    logged: bool = False  # `log()` already filled this record

    def put(self, name: N.Name, value: torch.Tensor, scope: str = "", *, across: str = MEAN) -> None:
        """A tensor statistic (0-d or 1-d) and how ranks combine it: MEAN, SUM (counts) or LOCAL (measured where
        only some ranks may run, such as evaluation: every rank must reduce the same statistics)."""
        self.tensors[(name, scope)] = (without_history(value), across)

    def put_scoped(self, name: N.Name, values: torch.Tensor, scopes: list[str]) -> None:
        """One statistic for many layers at once: entry i of the 1-d `values` belongs to `scopes[i]`."""
        self.tensors[(name, "*")] = (without_history(values), MEAN)
        self.scopes[name] = list(scopes)

    def note(self, name: N.Name, value: Value, scope: str = "") -> None:
        """A value known without touching the device (a flag, a count, a shape)."""
        self.values[(name, scope)] = value

    def resolve(self, reduce: Callable[[torch.Tensor], None] | None = None, world: int = 1) -> Signals:
        """Every measurement as signals, reading all tensors with one transfer (and one all-reduce when `reduce`)."""
        signals = Signals()
        shared = sorted(k for k, (_, how) in self.tensors.items() if how != LOCAL)  # the same order on every rank
        keys = shared + sorted(k for k, (_, how) in self.tensors.items() if how == LOCAL)
        if keys:
            first = self.tensors[keys[0]][0]
            dtype = torch.float32 if first.device.type == "mps" else torch.float64
            flat = [self.tensors[k][0] for k in keys]
            flat = [(t if t.device == first.device else t.to(first.device)).reshape(-1) for t in flat]
            sizes = [t.numel() for t in flat]
            packed = torch.cat([*flat, first.new_empty(0, dtype=dtype)])  # one op: cat promotes to `dtype`
            if reduce is not None and world > 1 and shared:
                n_shared = sum(sizes[: len(shared)])
                reduced = packed[:n_shared].clone()
                reduce(reduced)
                scale = [1.0 if self.tensors[k][1] == SUM else 1.0 / world for k in shared]
                weights = torch.tensor(scale, dtype=dtype).repeat_interleave(torch.tensor(sizes[: len(shared)]))
                packed = torch.cat([reduced * weights.to(packed.device), packed[n_shared:]])
            numbers: list[float] = packed.tolist()  # the one device sync of a sampled step
            offset = 0
            for (name, scope), n in zip(keys, sizes, strict=True):
                chunk = numbers[offset : offset + n]
                offset += n
                if scope == "*":
                    for layer, number in zip(self.scopes[name], chunk, strict=True):
                        signals.emit(name, number, layer, self.step)
                    continue
                value: Any = chunk[0] if self.tensors[(name, scope)][0].dim() == 0 else chunk
                signals.emit(name, value, scope, self.step)
        for (name, scope), value in self.values.items():
            signals.emit(name, value, scope, self.step)
        return signals
