"""Per-layer activation statistics of one training forward: scale, dead units, saturation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchmedic import signal_names as N
from torchmedic import stats
from torchmedic.monitor.context import Context, unwrap
from torchmedic.monitor.probes.base import Probe, stack, subsample
from torchmedic.monitor.record import StepRecord

RECTIFIERS = (nn.ReLU, nn.ReLU6)  # an output exactly 0 for every sample marks a dead unit
SQUASHERS = {nn.Tanh: (-1.0, 1.0), nn.Sigmoid: (0.0, 1.0), nn.Hardtanh: (-1.0, 1.0)}
ACTIVATIONS = (*RECTIFIERS, *SQUASHERS, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus)


class ActivationProbe(Probe):
    """Forward hooks on leaf layers with parameters and on activation modules, for the first training forward of
    a sampled step; each hook reduces its output to a few numbers on the device."""

    name = "activations"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._scale: dict[str, torch.Tensor] = {}  # layer -> (mean, std, between-sample std), in forward order
        self._dead: dict[str, torch.Tensor] = {}
        self._saturation: dict[str, torch.Tensor] = {}

    def arm(self, record: StepRecord) -> None:
        self._scale, self._dead, self._saturation = {}, {}, {}
        model = self.ctx.model
        if model is None or not self.ctx.config.activations:
            return
        for name, module in unwrap(model).named_modules():
            leaf = next(module.children(), None) is None
            if leaf and (isinstance(module, ACTIVATIONS) or next(module.parameters(recurse=False), None) is not None):
                self.temporary.add(module.register_forward_hook(self.guarded(self._layer(name))))

    def _layer(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if name in self._scale or not isinstance(output, torch.Tensor) or not output.is_floating_point():
                return
            if not torch.is_grad_enabled() or output.numel() < 2:
                return
            config = self.ctx.config
            x = subsample(output, config.stat_samples, config.stat_elements)
            self._scale[name] = stats.spread_tensor(x)
            if isinstance(module, RECTIFIERS):
                self._dead[name] = stats.dead_fraction_tensor(x)
            bounds = next((b for cls, b in SQUASHERS.items() if isinstance(module, cls)), None)
            if bounds is not None:
                self._saturation[name] = stats.saturated_fraction_tensor(x, *bounds)

        return hook

    def after_step(self, record: StepRecord) -> None:
        if self._scale:
            names = list(self._scale)
            table = stack(list(self._scale.values()))  # (layers, 3)
            record.put_scoped(N.ACT_MEAN, table[:, 0], names)
            record.put_scoped(N.ACT_STD, table[:, 1], names)
            record.put_scoped(N.ACT_BETWEEN_STD, table[:, 2], names)
            record.note(N.ACT_LAYERS, names)
        if self._dead:
            record.put_scoped(N.ACT_DEAD_FRACTION, stack(list(self._dead.values())), list(self._dead))
        if self._saturation:
            record.put_scoped(N.ACT_SATURATION, stack(list(self._saturation.values())), list(self._saturation))
        self._scale, self._dead, self._saturation = {}, {}, {}
