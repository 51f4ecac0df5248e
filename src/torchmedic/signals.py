"""Named measurements: what a probe emits and what a rule reads."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from torchmedic.signal_names import DECLARED, Name

Value = float | int | bool | str | list[Any] | dict[str, Any] | None


@dataclass(frozen=True)
class Signal:
    """One measurement: `name` says what (e.g. `act.std`), `scope` where (a module or parameter name, or "" for
    the whole setup), `step` when (optimizer steps into a trial or training; None before any step)."""

    name: str
    value: Value
    scope: str = ""
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_safe(v) for k, v in asdict(self).items()}


class Signals:
    """An append-only collection of signals with lookups by name and scope."""

    def __init__(self, signals: Iterable[Signal] = ()) -> None:
        self._items: list[Signal] = []
        self._latest: dict[tuple[str, str], Signal] = {}
        self._scopes: dict[str, dict[str, Signal]] = {}  # name -> scope -> latest: `scoped` without a scan
        for s in signals:
            self.add(s)

    def add(self, signal: Signal) -> None:
        if signal.name not in DECLARED:
            raise ValueError(f"undeclared signal name {signal.name!r}: declare it in torchmedic.signal_names")
        self._items.append(signal)
        self._latest[(signal.name, signal.scope)] = signal
        self._scopes.setdefault(signal.name, {})[signal.scope] = signal

    def emit(self, name: Name, value: Value, scope: str = "", step: int | None = None) -> None:
        self.add(Signal(name, value, scope, step))

    def extend(self, signals: Iterable[Signal]) -> None:
        for s in signals:
            self.add(s)

    def get(self, name: Name, default: Any = None, *, scope: str = "") -> Any:
        """The latest value of `name` at `scope` ("" = the whole setup), or `default` when it was not measured."""
        signal = self._latest.get((name, scope))
        return default if signal is None else signal.value

    def has(self, name: Name, *, scope: str = "") -> bool:
        return (name, scope) in self._latest

    def scoped(self, name: Name) -> dict[str, Any]:
        """The latest value of `name` in every scope that has it, in the order first measured."""
        return {scope: s.value for scope, s in self._scopes.get(name, {}).items()}

    def __iter__(self) -> Iterator[Signal]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self._items]


def _json_safe(value: Any) -> Any:
    """Floats that JSON cannot hold (nan, inf) become strings; containers are walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


json_safe = _json_safe
