"""Whether the model trains in train mode, and which of its layers behave differently in the two modes."""

from __future__ import annotations

from torch import nn

from torchmedic.monitor.context import unwrap
from torchmedic.monitor.probes.base import Probe
from torchmedic.monitor.record import StepRecord

DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


class ModeProbe(Probe):
    """Reads `training` flags and dropout rates at the update of a sampled step (no device work)."""

    name = "mode"

    def before_step(self, record: StepRecord) -> None:
        model = self.ctx.model
        if model is None:
            return
        dropouts = [m for m in unwrap(model).modules() if isinstance(m, DROPOUTS) and m.p > 0]
        norms = [
            m
            for m in unwrap(model).modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]
        record.note("mode.training", model.training)
        record.note("mode.dependent_layers", len(dropouts) + len(norms))
        record.note("mode.dependent_in_eval", sum(not m.training for m in dropouts + norms))
        record.note("mode.max_dropout", max((float(m.p) for m in dropouts), default=0.0))
