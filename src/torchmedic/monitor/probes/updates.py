"""Weight norms, how far one optimizer step moves each weight relative to its size, identical weight rows, and
NaN or Inf already in the weights before the first update."""

from __future__ import annotations

import torch

from torchmedic import signal_names as N
from torchmedic import stats
from torchmedic.monitor.context import Context
from torchmedic.monitor.probes.base import Probe, stack
from torchmedic.monitor.record import StepRecord

NORM_FLOOR = 1e-30  # keeps ratios of all-zero weights finite without changing any real ratio


class UpdateProbe(Probe):
    """Copies the trained weights before a sampled step and compares after it (memory: one copy, for one step)."""

    name = "updates"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._params: list[torch.Tensor] = []
        self._before: list[torch.Tensor] = []
        self._size = torch.zeros(0)
        self._at_start: tuple[torch.Tensor, list[str]] | None = None  # NaN/Inf counts before the first update

    def before_step(self, record: StepRecord) -> None:
        self._params = [p for p in self.ctx.trained_params() if not p.is_sparse]
        if not self._params:
            return
        self._before = [p.detach().clone() for p in self._params]
        norms = stack(list(torch._foreach_norm(self._before)))
        self._size = norms.clamp_min(NORM_FLOOR)
        names = [self.ctx.name(p) for p in self._params]
        record.put_scoped(N.WEIGHT_NORM, norms, names)
        record.put(N.WEIGHT_NORM, norms.norm())
        if self.ctx.step == 0:  # counted on device: read with the record's one sync
            counts = stack([(~torch.isfinite(w)).sum() for w in self._before]).float()
            self._at_start = counts, names
        config = self.ctx.config
        if self._at_start is not None and record.step <= config.first_steps + config.confirm * config.every:
            record.put_scoped(N.WEIGHT_NONFINITE, *self._at_start)  # repeated over the steps that confirm it
        rows = [
            (n, w)
            for n, w, p in zip(names, self._before, self._params, strict=True)
            if w.dim() >= 2 and w.shape[0] >= 2 and id(p) in self.ctx.unit_params
        ]
        if rows:  # 0 when every row (unit) of a layer equals the first: the units cannot become different
            spread = stack([(w - w[:1]).abs().amax() / w.abs().amax().clamp_min(NORM_FLOOR) for _, w in rows])
            record.put_scoped(N.WEIGHT_ROW_SPREAD, spread, [n for n, _ in rows])

    def after_step(self, record: StepRecord) -> None:
        if not self._params:
            return
        moved, _ = stats.update_norms(self._before, self._params)
        ratio = moved / self._size
        names = [self.ctx.name(p) for p in self._params]
        record.put_scoped(N.UPDATE_RATIO, ratio, names)
        weights = [i for i, p in enumerate(self._params) if p.dim() >= 2]
        if weights:  # matrices and kernels: biases start at 0, which makes their ratios meaningless
            picked = torch.stack([ratio[i] for i in weights])  # views: no index tensor to copy to the device
            record.put(N.UPDATE_RATIO_MAX, picked.max())
            record.put(N.UPDATE_RATIO_MEDIAN, picked.median())
        record.put(N.UPDATE_NORM, moved.norm())
        self.disarm()

    def disarm(self) -> None:
        super().disarm()
        self._params, self._before = [], []
