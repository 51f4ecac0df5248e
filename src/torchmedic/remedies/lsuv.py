"""Layer-sequential unit variance (Mishkin & Matas, 2016): rescale layers, in forward order, to unit output variance."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from torchmedic.batch import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LsuvConfig:
    """When LSUV stops rescaling a layer."""

    tolerance: float = 0.1  # |Var(output) - 1| accepted; Tol_var = 0.1 in Mishkin & Matas
    max_iterations: int = 10  # rescalings per layer before giving up; T_max = 10 in the paper


@dataclass(frozen=True)
class LsuvStep:
    """How one layer was rescaled: the forward passes it took and its output variance at the end."""

    iterations: int
    variance: float
    converged: bool


class _Reached(Exception):
    """Raised from a forward hook once the layer of interest has produced its output: the rest is not needed."""


def output_variance(model: nn.Module, layer: nn.Module, batch: Batch) -> float:
    """Variance of everything `layer` outputs when `model` runs on `batch` (the forward stops right after it)."""
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
        seen.append(output.detach())
        raise _Reached

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            batch.run(model)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not seen:
        return math.nan
    return float(seen[0].double().var())


def rescale_to_unit_variance(
    model: nn.Module, order: list[str], batch: Batch, config: LsuvConfig = LsuvConfig()
) -> dict[str, LsuvStep]:
    """Divide each layer's weight by the std of its output, layer after layer in `order`, until the variance is 1."""
    modules = dict(model.named_modules())
    steps: dict[str, LsuvStep] = {}
    for name in order:
        layer = modules[name]
        variance, iterations = output_variance(model, layer, batch), 0
        while abs(variance - 1) >= config.tolerance and iterations < config.max_iterations:
            if not (math.isfinite(variance) and variance > 0):
                break
            with torch.no_grad():
                layer.weight.div_(math.sqrt(variance))
            variance, iterations = output_variance(model, layer, batch), iterations + 1
        steps[name] = LsuvStep(iterations, variance, abs(variance - 1) < config.tolerance)
        if not steps[name].converged:
            log.warning("LSUV: %s output variance %.3g after %d rescalings (target 1 +- %.2g)", name, variance,
                        iterations, config.tolerance)  # fmt: skip
    return steps
