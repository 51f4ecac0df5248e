"""What a run leaves in its directory: config.json, metrics.json, findings.json, HTML reports and TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchmedic.finding import Finding
from torchmedic.monitor.events import FILENAME as EVENTS
from torchmedic.monitor.tensorboard import tensorboard_writer
from torchmedic.render.html import write
from torchmedic.render.monitor_html import monitor_page
from torchmedic.report import Report

CONFIG, METRICS, FINDINGS = "config.json", "metrics.json", "findings.json"
PREFLIGHT, MONITOR_DIR, MONITOR_PAGE, MODEL = "preflight", "monitor", "monitor.html", "model.pt"
TENSORBOARD = "tensorboard"


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_preflight(out: Path, report: Report) -> None:
    """The pre-flight diagnosis as JSON (for `torchmedic report`) and as its HTML page."""
    write_json(out / f"{PREFLIGHT}.json", report.to_dict())
    report.to_html(out / f"{PREFLIGHT}.html")


def write_findings(out: Path, preflight: Report | None, findings: list[Finding]) -> None:
    """The pre-flight report's causes and the monitor's findings, and the monitor's page when it logged."""
    write_json(out / FINDINGS, {
        "preflight": None if preflight is None else {"healthy": preflight.healthy, "causes": preflight.causes},
        "monitor": [f.to_dict() for f in findings],
    })  # fmt: skip
    events = out / MONITOR_DIR / EVENTS
    if events.is_file():
        lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines() if line.strip()]
        write(monitor_page(lines), out / MONITOR_PAGE)


class EpochScalars:
    """Per-epoch loss, accuracy and LR as TensorBoard scalars (nothing when tensorboard is not installed)."""

    def __init__(self, out: Path) -> None:
        self._writer = tensorboard_writer(out / TENSORBOARD)

    def add(self, row: dict[str, float]) -> None:
        if self._writer is None:
            return
        for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"):
            split, _, metric = name.partition("_")
            self._writer.add_scalar(f"{metric}/{split}" if metric else name, row[name], int(row["epoch"]))
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
