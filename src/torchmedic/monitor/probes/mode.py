"""Whether the model trains in train mode, and which of its layers behave differently in the two modes."""

from __future__ import annotations

from torch import nn

from torchmedic import signal_names as N
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
        record.note(N.MODE_TRAINING, model.training)
        record.note(N.MODE_DEPENDENT_LAYERS, len(dropouts) + len(norms))
        record.note(N.MODE_DEPENDENT_IN_EVAL, sum(not m.training for m in dropouts + norms))
        record.note(N.MODE_MAX_DROPOUT, max((float(m.p) for m in dropouts), default=0.0))
