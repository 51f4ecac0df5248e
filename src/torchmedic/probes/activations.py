"""Signal propagation at init: per-layer activation scale, dead units and saturation on one training batch."""

from __future__ import annotations

import torch

from torchmedic import signal_names as N
from torchmedic.context import Context
from torchmedic.layers import recording
from torchmedic.probes.registry import probe


@probe("activations", order=40, forwards=1)
def activations(ctx: Context) -> None:
    s = ctx.signals
    model = ctx.copy()
    batch = ctx.train[0]
    with torch.no_grad(), recording(model, batch.first_input) as activity:
        batch.run(model)
    first = next(iter(activity.layers.items()), None)
    if first is not None and first[1].in_is_data:
        s.emit(N.INPUT_FIRST_LAYER_RMS, first[1].in_rms)
        s.emit(N.INPUT_FIRST_LAYER, first[0])
    for name, layer in activity.layers.items():
        s.emit(N.ACT_IN_STD, layer.in_std, name)
        s.emit(N.ACT_OUT_STD, layer.out_std, name)
        s.emit(N.ACT_OUT_MEAN, layer.out_mean, name)
        if not layer.in_is_data:
            s.emit(N.ACT_IN_DEAD, layer.in_dead, name)
    stds = [layer.out_std for layer in activity.layers.values()]
    if len(stds) >= 2 and stds[0] > 0:
        s.emit(N.ACT_STD_RATIO, stds[-1] / stds[0])
    for name, share in activity.saturated.items():
        s.emit(N.ACT_SATURATED, share, name)
    for name, values in activity.bn_batch.items():
        s.emit(N.BN_VALUES_PER_CHANNEL, values, name)
