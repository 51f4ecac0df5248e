"""TensorBoard scalars and histograms of the sampled steps, with hierarchical tags (optional extra `tensorboard`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torchmedic import signal_names as N
from torchmedic.finding import Finding
from torchmedic.rules.live.common import finite
from torchmedic.signals import Signals

log = logging.getLogger("torchmedic.monitor")

# signal name -> tag pattern; {scope} is the layer, parameter or param group
TAGS: dict[str, str] = {
    N.LOSS: N.LOSS,
    N.LR: "lr/{scope}",
    N.GRAD_NORM: "grad_norm/{scope}",
    N.WEIGHT_NORM: "weight_norm/{scope}",
    N.UPDATE_RATIO: "update_ratio/{scope}",
    N.ACT_MEAN: "act/{scope}/mean",
    N.ACT_STD: "act/{scope}/std",
    N.ACT_BETWEEN_STD: "act/{scope}/between_std",
    N.ACT_DEAD_FRACTION: "act/{scope}/dead_fraction",
    N.ACT_SATURATION: "act/{scope}/saturation",
    N.GRAD_DEAD_FRACTION: "grad_dead_fraction/{scope}",
    N.INPUT_MEAN: "input/mean",
    N.INPUT_STD: "input/std",
    N.OUTPUT_BETWEEN_STD: "output/between_std",
    N.OUTPUT_STD: "output/std",
    N.PRED_ENTROPY: "pred/entropy",
    N.TARGET_ENTROPY: "target/entropy",
}
HISTOGRAMS = {N.PRED_HIST: "pred/classes", N.TARGET_HIST: "target/classes"}


def tensorboard_writer(log_dir: str | Path) -> Any | None:
    """A SummaryWriter when tensorboard is installed, else None (with a log message)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed (pip install 'torchmedic[tensorboard]'): writing the JSONL log only")
        return None
    return SummaryWriter(log_dir=str(log_dir))


class TensorBoardLog:
    """Writes one scalar per (signal, scope) of TAGS and the predicted / target class histograms."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def step(self, step: int, signals: Signals) -> None:
        import numpy as np

        for signal in signals:
            pattern = TAGS.get(signal.name)
            if pattern is not None and finite(signal.value) and (signal.scope or "{scope}" not in pattern):
                self.writer.add_scalar(pattern.format(scope=signal.scope), signal.value, step)
        for name, tag in HISTOGRAMS.items():
            counts = signals.get(name)
            if isinstance(counts, list) and counts and sum(counts) > 0:
                edges = np.arange(len(counts) + 1, dtype=float) - 0.5
                values = np.arange(len(counts), dtype=float)
                c = np.asarray(counts, dtype=float)
                self.writer.add_histogram_raw(
                    tag,
                    min=0,
                    max=len(counts) - 1,
                    num=float(c.sum()),
                    sum=float((values * c).sum()),
                    sum_squares=float((values**2 * c).sum()),
                    bucket_limits=edges[1:].tolist(),
                    bucket_counts=c.tolist(),
                    global_step=step,
                )
        self.writer.flush()

    def finding(self, finding: Finding) -> None:
        self.writer.add_text("findings", f"step {finding.step}: **{finding.cause}**: {finding.summary}", finding.step)

    def close(self, findings: list[Finding]) -> None:
        self.writer.close()
