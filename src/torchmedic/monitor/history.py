"""What the monitor remembers of earlier sampled steps, so that rules can compare the run with its own past.

Memory is bounded by the number of layers and classes times a small window, never by the number of steps."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

from torchmedic import signal_names as N
from torchmedic.monitor.config import MonitorConfig
from torchmedic.signals import Signals

FIRST = (N.LOSS, N.GRAD_NORM, N.WEIGHT_NORM, N.OUTPUT_BETWEEN_STD, N.OUTPUT_STD)  # whole-model scalars
WINDOWED = (
    N.LOSS,
    N.UPDATE_RATIO_MAX,
    N.UPDATE_RATIO_MEDIAN,
    N.WEIGHT_NORM,
    N.INPUT_MEAN,
    N.INPUT_STD,
    N.INPUT_CHANNEL_MEAN,
    N.INPUT_CHANNEL_STD,
    N.OUTPUT_BETWEEN_STD,
    N.EVAL_INPUT_MEAN,
    N.EVAL_INPUT_STD,
    N.EVAL_INPUT_CHANNEL_MEAN,
    N.EVAL_INPUT_CHANNEL_STD,
)
DEAD = (N.ACT_DEAD_FRACTION, N.GRAD_DEAD_FRACTION)
MAX_DECADES = 12  # an LR 1e12 below its peak is as good as zero


def _entropy(counts: list[float]) -> float:
    """`stats.entropy` for counts already read from the device (no tensor round trip)."""
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c > 0) if total > 0 else 0.0


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class History:
    """Run-level memory: first values, peaks, moving windows and counts, added to each sampled step's signals."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self.sampled = 0
        self.first: dict[str, float] = {}
        self.windows: dict[str, deque[Any]] = {name: deque(maxlen=config.window) for name in WINDOWED}
        self.baseline: dict[tuple[str, str], float] = {}  # dead fraction per layer over the first sampled steps
        self.lr_peak: dict[str, float] = {}
        self.lr_decades: dict[int, int] = {}  # decades below the peak -> step at which the LR fell below it
        self.hists: deque[tuple[list[float], list[float]]] = deque(maxlen=config.window)  # (predicted, target)
        self.batch_entropy: deque[float] = deque(maxlen=config.window)
        self.target_total: list[float] = []
        self.nonfinite = {N.LOSS: 0, "input": 0, "target": 0}
        self.eval_captures = 0

    def update(self, s: Signals, step: int) -> None:
        """Add the run-level view of step `step` to its signals `s`."""
        self.sampled += 1
        s.emit(N.MONITOR_STEP, step, step=step)
        s.emit(N.MONITOR_SAMPLED_STEPS, self.sampled, step=step)
        # init causes are judged on the first sampled steps, plus the samples it takes to confirm the last of them
        s.emit(N.MONITOR_EARLY, self.sampled < self.config.first_steps + self.config.confirm, step=step)
        self.eval_captures += s.has(N.EVAL_INPUT_MEAN)
        s.emit(N.EVAL_INPUT_CAPTURES, self.eval_captures, step=step)
        self._scalars(s, step)
        self._learning_rate(s, step)
        self._dead(s, step)
        self._histograms(s, step)

    def _scalars(self, s: Signals, step: int) -> None:
        for name in FIRST:
            value = s.get(name)
            if name not in self.first and _finite(value):
                self.first[name] = value
            if name in self.first:
                s.emit(N.derived(name, "first"), self.first[name], step=step)
        for name in WINDOWED:
            value = s.get(name)
            if value is not None and (isinstance(value, list) or _finite(value)):
                window = self.windows[name]
                if window and isinstance(value, list) and len(window[-1]) != len(value):
                    window.clear()
                window.append(value)
            if not self.windows[name]:
                continue
            values = list(self.windows[name])
            if isinstance(values[0], list):
                s.emit(
                    N.derived(name, "recent"), [statistics.fmean(col) for col in zip(*values, strict=True)], step=step
                )
            else:
                s.emit(N.derived(name, "recent"), statistics.fmean(values), step=step)
                s.emit(N.derived(name, "series"), values, step=step)
        for kind, name in (("loss", N.LOSS), ("input", N.INPUT_FINITE), ("target", N.TARGET_FINITE)):
            value = s.get(name)
            if value is not None and (not _finite(value) or (name != N.LOSS and value < 1.0)):
                self.nonfinite[kind] += 1
            s.emit(N.derived(kind, "nonfinite_steps"), self.nonfinite[kind], step=step)
        ratios = list(self.windows[N.UPDATE_RATIO_MAX])
        if ratios:
            s.emit(N.UPDATE_RATIO_MAX_PEAK, max(ratios), step=step)

    def _learning_rate(self, s: Signals, step: int) -> None:
        lrs = {scope: v for scope, v in s.scoped(N.LR).items() if _finite(v)}
        if not lrs:
            return
        for scope, lr in lrs.items():
            self.lr_peak[scope] = max(lr, self.lr_peak.get(scope, 0.0))
            s.emit(N.LR_PEAK, self.lr_peak[scope], scope, step)
        fractions = [lr / self.lr_peak[scope] for scope, lr in lrs.items() if self.lr_peak[scope] > 0]
        if not fractions:
            return
        fraction = max(fractions)  # the group that still learns fastest decides whether training has stopped
        s.emit(N.LR_FRACTION, fraction, step=step)
        decades = MAX_DECADES if fraction <= 0 else min(MAX_DECADES, math.floor(-math.log10(fraction) + 1e-9))
        for k in list(self.lr_decades):
            if k > decades:
                del self.lr_decades[k]  # the LR came back up
        for k in range(1, decades + 1):
            self.lr_decades.setdefault(k, step)
        s.emit(N.LR_DECADE_STEPS, {str(k): v for k, v in sorted(self.lr_decades.items())}, step=step)

    def _dead(self, s: Signals, step: int) -> None:
        for name in DEAD:
            for scope, value in s.scoped(name).items():
                if not _finite(value):
                    continue
                key = (name, scope)
                if self.sampled <= self.config.first_steps:
                    self.baseline[key] = min(value, self.baseline.get(key, value))
                if key in self.baseline:
                    s.emit(N.derived(name, "baseline"), self.baseline[key], scope, step)

    def _histograms(self, s: Signals, step: int) -> None:
        pred, target = s.get(N.PRED_HIST), s.get(N.TARGET_HIST)
        if not isinstance(pred, list) or not isinstance(target, list) or len(pred) != len(target):
            return
        if self.hists and len(self.hists[-1][1]) != len(target):
            self.hists.clear()
            self.target_total = []
        self.hists.append((pred, target))
        self.target_total = (
            [a + b for a, b in zip(self.target_total, target, strict=True)] if self.target_total else list(target)
        )
        self.batch_entropy.append(_entropy(target))
        s.emit(N.PRED_ENTROPY, _entropy(pred), step=step)
        s.emit(N.TARGET_ENTROPY, self.batch_entropy[-1], step=step)
        s.emit(N.PRED_HIST_WINDOW, [sum(col) for col in zip(*(p for p, _ in self.hists), strict=True)], step=step)
        s.emit(N.TARGET_HIST_WINDOW, [sum(col) for col in zip(*(t for _, t in self.hists), strict=True)], step=step)
        s.emit(N.TARGET_HIST_TOTAL, list(self.target_total), step=step)
        s.emit(N.TARGET_ENTROPY_TOTAL, _entropy(self.target_total), step=step)
        s.emit(N.TARGET_BATCH_ENTROPY_RECENT, statistics.fmean(self.batch_entropy), step=step)
        s.emit(N.TARGET_BATCH_SIZE, sum(target), step=step)
