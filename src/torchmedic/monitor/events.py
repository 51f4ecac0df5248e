"""The monitor's event log: one JSON line per sampled step and per finding, flushed so that it survives a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from torchmedic.finding import Finding
from torchmedic.signals import Signals, json_safe

FILENAME = "torchmedic-events.jsonl"


def compact(signals: Signals) -> dict[str, Any]:
    """{name: value} for whole-model signals and {name: {scope: value}} for per-layer ones."""
    out: dict[str, Any] = {}
    for signal in signals:
        if signal.scope:
            slot = out.setdefault(signal.name + "/", {})
            slot[signal.scope] = signal.value
        else:
            out[signal.name] = signal.value
    return json_safe(out)


class EventLog:
    """Appends to `<log_dir>/torchmedic-events.jsonl`."""

    def __init__(self, log_dir: str | Path, header: dict[str, Any]) -> None:
        path = Path(log_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / FILENAME
        self._file = self.path.open("a", encoding="utf-8")
        self._write({"type": "start", **header})

    def _write(self, event: dict[str, Any]) -> None:
        if self._file.closed:
            return
        self._file.write(json.dumps({"time": round(time.time(), 3), **event}) + "\n")
        self._file.flush()

    def step(self, step: int, signals: Signals) -> None:
        self._write({"type": "step", "step": step, "signals": compact(signals)})

    def finding(self, finding: Finding) -> None:
        self._write({"type": "finding", **finding.to_dict()})

    def close(self, findings: list[Finding]) -> None:
        self._write({"type": "end", "findings": [f.cause for f in findings]})
        self._file.close()
