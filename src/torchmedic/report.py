"""The result of diagnose(): ranked findings, every signal measured, and what was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torchmedic.finding import Finding
from torchmedic.signals import Signals


@dataclass
class Report:
    """`findings` holds the likely root causes, most likely first; it is empty for a healthy setup."""

    findings: list[Finding]
    signals: Signals
    task: str = ""
    notes: list[str] = field(default_factory=list)  # how the diagnosis was run (default optimizer, devices, ...)
    skipped: list[str] = field(default_factory=list)  # probes not run, and why
    elapsed_s: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.findings

    @property
    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and Inf become strings)."""
        return {
            "healthy": self.healthy,
            "task": self.task,
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            "skipped": list(self.skipped),
            "elapsed_s": round(self.elapsed_s, 3),
            "signals": self.signals.to_list(),
        }

    def __str__(self) -> str:
        from torchmedic.render.text import plain

        return plain(self)
