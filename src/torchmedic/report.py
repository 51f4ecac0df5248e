"""The result of diagnose(): ranked findings, every signal measured, and what was skipped."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from torchmedic.finding import Finding, Verification
from torchmedic.signals import Signals, json_safe
from torchmedic.symptom import Symptom


@dataclass
class Report:
    """`symptom` is what the baseline trial showed on held-out samples (None when no trial could run); `findings`
    holds the likely root causes, most likely first; `tried` every fix tried and its verdict."""

    findings: list[Finding]
    signals: Signals
    task: str = ""
    notes: list[str] = field(default_factory=list)  # how the diagnosis was run (default optimizer, devices, ...)
    skipped: list[str] = field(default_factory=list)  # probes not run, and why
    elapsed_s: float = 0.0
    symptom: Symptom | None = None
    tried: list[tuple[str, Verification]] = field(default_factory=list)  # (cause, verdict of its fix)
    explained: bool = False  # a finding's fix removed the symptom, or a cause only the user can fix was measured
    curves: dict[str, list[float]] = field(default_factory=dict)  # training loss per step of each trial

    @property
    def healthy(self) -> bool:
        """No finding, and the baseline trial measured no symptom: never healthy on a symptom, nor unmeasured."""
        return not self.findings and self.symptom is not None and not self.symptom.present

    @property
    def broken(self) -> bool:
        """A finding or a measured symptom: what stops a run. A report whose trial never ran is neither this nor
        healthy."""
        return bool(self.findings) or (self.symptom is not None and self.symptom.present)

    @property
    def unexplained(self) -> bool:
        """The symptom is present and no fix tried removed it: the model does not learn, no cause is confirmed."""
        return self.symptom is not None and self.symptom.present and not self.explained

    @property
    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and Inf become strings)."""
        data: dict[str, Any] = {
            "healthy": self.healthy,
            "task": self.task,
            "symptom": None if self.symptom is None else {**asdict(self.symptom), "text": str(self.symptom)},
            "unexplained": self.unexplained,
            "findings": [f.to_dict() for f in self.findings],
            "tried": [{"cause": cause, **asdict(check)} for cause, check in self.tried],
            "notes": list(self.notes),
            "skipped": list(self.skipped),
            "elapsed_s": round(self.elapsed_s, 3),
            "curves": {label: list(losses) for label, losses in self.curves.items()},
            "signals": self.signals.to_list(),
        }
        return json_safe(data)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as one self-contained HTML page (plots inlined as SVG when matplotlib is installed), written
        to `path` when given."""
        from torchmedic.render.html import diagnosis_page, write

        page = diagnosis_page(self.to_dict())
        if path is not None:
            write(page, path)
        return page

    def _repr_html_(self) -> str:
        from torchmedic.render.html import diagnosis_fragment

        return diagnosis_fragment(self.to_dict())

    def __str__(self) -> str:
        from torchmedic.render.text import plain

        return plain(self)
