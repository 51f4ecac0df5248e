"""Statistics of the model's input on training forwards, and of evaluation batches to compare with them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchmedic import signal_names as N
from torchmedic import stats
from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.context import FORWARDS, Context
from torchmedic.monitor.probes.base import Probe, subsample
from torchmedic.monitor.record import LOCAL, StepRecord


def first_tensor(args: Any, kwargs: Mapping[str, Any] | None = None) -> torch.Tensor | None:
    """The first tensor among a forward's positional, then keyword, arguments."""
    for value in [*args, *(kwargs or {}).values()]:
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
            return value[0]
    return None


def input_stats(x: torch.Tensor, config: MonitorConfig) -> dict[str, torch.Tensor]:
    """Scale, range, finiteness and between-sample spread of a float input, per channel when there are few."""
    max_channels = config.max_channels
    finite = torch.isfinite(x.detach().sum())  # over the whole batch: one NaN/Inf anywhere spoils the sum
    x = subsample(x, config.stat_samples, config.stat_elements)
    xf = x.float()
    mean, std, between = stats.spread_tensor(xf)
    out = {"mean": mean, "std": std, "abs_max": xf.abs().amax(), "finite": finite, "between_std": between}
    if x.dim() >= 2 and 1 < x.shape[1] <= max_channels and x.shape[0] > 1:
        channels = stats.per_feature(xf)  # (C, N * ...)
        ch_std, ch_mean = stats.std_mean_tensor(channels, dim=1)
        out["channel_mean"], out["channel_std"] = ch_mean, ch_std
    return out


STEPLESS_EVERY = 16  # training forwards between two checks of a loop that does not step: confirm checks name it
# max_unstepped_forwards + (confirm - 1) * 16 = 64 forwards in


class InputProbe(Probe):
    """One permanent forward pre-hook on the model (the only hook kept between sampled steps): it measures the
    input of the first training forward of a sampled step and of one evaluation forward per sampling interval,
    counts evaluation forwards run in train mode, and training forwards since the last optimizer step."""

    name = "inputs"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._record: StepRecord | None = None
        self._eval_armed = False
        self._eval: dict[str, torch.Tensor] = {}
        self.eval_forwards = 0
        self.train_mode_eval_forwards = 0

    def attach(self) -> None:
        model = self.ctx.model
        if model is not None:
            self.permanent.add(model.register_forward_pre_hook(self.guarded(self._forward), with_kwargs=True))

    def arm(self, record: StepRecord) -> None:
        self._record = record
        self._eval_armed = True

    def _forward(self, module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        self.ctx.last_forward = next(FORWARDS)
        if torch.is_grad_enabled():
            self.ctx.forward_step = self.ctx.step + 1
            self.ctx.unstepped += 1
            first = self.ctx.config.thresholds.max_unstepped_forwards
            if self.ctx.unstepped >= first and (self.ctx.unstepped - first) % STEPLESS_EVERY == 0:
                self.ctx.stepless()
            record, self._record = self._record, None
            if record is not None:
                x = first_tensor(args, kwargs)
                if x is not None and x.is_floating_point():
                    for key, value in input_stats(x, self.ctx.config).items():
                        record.put(N.derived("input", key), value)
                record.note(N.INPUT_FLOAT, x is not None and x.is_floating_point())
            return
        self.eval_forwards += 1
        self.train_mode_eval_forwards += module.training
        if self._eval_armed:
            self._eval_armed = False
            x = first_tensor(args, kwargs)
            if x is not None and x.is_floating_point():
                self._eval = input_stats(x, self.ctx.config)

    def finish(self, record: StepRecord) -> None:
        record.note(N.EVAL_FORWARDS, self.eval_forwards)
        record.note(N.EVAL_TRAIN_MODE_FORWARDS, self.train_mode_eval_forwards)
        for key, value in self._eval.items():  # evaluation may run on rank 0 only
            record.put(N.derived("eval_input", key), value, across=LOCAL)
        self._eval = {}

    def disarm(self) -> None:
        super().disarm()
        self._record = None
