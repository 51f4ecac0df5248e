"""The layers of a model as torchmedic reports them: modules that own parameters, and activation statistics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchmedic.stats import dead_fraction, per_feature, saturated_fraction_tensor

WEIGHT_LAYERS = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding, nn.RNNBase)
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
SATURATING = (nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Softsign)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv, linear, embedding and recurrent layers in registration order (what init and signal propagation
    are about)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def param_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every module that owns parameters directly."""
    return [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def weight_gain(module: nn.Module) -> float | None:
    """std(W) * sqrt(fan_in): how much a layer scales a unit-variance input (PyTorch's default init gives ~0.58,
    Kaiming ~1.41, Xavier ~1 for square layers)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2 or isinstance(module, nn.Embedding):
        return None
    fan_in = weight[0].numel()
    return float(weight.detach().float().std()) * fan_in**0.5


@dataclass
class LayerActivity:
    """Statistics of one weight layer's input (post-activation of the layer before) and output."""

    in_std: float
    in_rms: float  # root mean square of the input: ~1 for standardized data, ~140 for raw 0-255 pixels
    in_dead: float  # fraction of input features that are zero for every sample and position
    in_is_data: bool  # the input is the model's input itself (possibly reshaped), not an activation
    out_std: float
    out_mean: float
    batch: int  # number of samples the layer saw


@dataclass
class Activity:
    layers: dict[str, LayerActivity] = field(default_factory=dict)
    saturated: dict[str, float] = field(default_factory=dict)  # tanh/sigmoid modules: fraction near +-1 / 0-1
    bn_batch: dict[str, int] = field(default_factory=dict)  # BatchNorm: values per channel in one forward


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return next((v for v in value if isinstance(v, torch.Tensor)), None)
    return None


def _signal_std(y: torch.Tensor) -> float:
    """How much a layer's output varies with the input: the std of each feature over samples (and positions),
    averaged over features. A constant bias per unit does not count, unlike in y.std()."""
    if y.dim() < 2 or y.shape[0] < 2:
        return 0.0
    return float(per_feature(y.detach().float()).std(dim=1).mean())


@contextmanager
def recording(model: nn.Module, model_input: torch.Tensor | None = None) -> Iterator[Activity]:
    """Record activation statistics of every weight layer during the forward passes inside the block.

    Only the first call of each layer is kept (a layer reused in a loop is measured once)."""
    activity = Activity()
    data_ptr = model_input.untyped_storage().data_ptr() if model_input is not None else None
    handles = []

    def on_forward(name: str, module: nn.Module, args: Any, output: Any) -> None:
        x, y = _first_tensor(args), _first_tensor(output)
        if name in activity.layers or x is None or y is None or not y.is_floating_point():
            return
        with torch.no_grad():
            is_data = data_ptr is not None and x.untyped_storage().data_ptr() == data_ptr
            xf = x.detach().float() if x.is_floating_point() else None
            activity.layers[name] = LayerActivity(
                in_std=float(xf.std()) if xf is not None and xf.numel() > 1 else float("nan"),
                in_rms=float(xf.pow(2).mean().sqrt()) if xf is not None else float("nan"),
                in_dead=dead_fraction(xf) if xf is not None and xf.dim() >= 2 else 0.0,
                in_is_data=is_data or xf is None,
                out_std=_signal_std(y),
                out_mean=float(y.detach().float().mean()),
                batch=int(x.shape[0]) if x.dim() > 0 else 1,
            )

    def on_saturating(name: str, module: nn.Module, args: Any, output: Any) -> None:
        y = _first_tensor(output)
        if y is None or name in activity.saturated:
            return
        low, high = (0.0, 1.0) if isinstance(module, nn.Sigmoid) else (-1.0, 1.0)
        activity.saturated[name] = float(saturated_fraction_tensor(y, low, high))

    def on_norm(name: str, module: nn.Module, args: Any) -> None:
        x = _first_tensor(args)
        if x is not None and name not in activity.bn_batch:
            activity.bn_batch[name] = int(per_feature(x).shape[1])

    for name, module in model.named_modules():
        if isinstance(module, WEIGHT_LAYERS) and not isinstance(module, nn.RNNBase):
            handles.append(module.register_forward_hook(lambda m, a, o, n=name: on_forward(n, m, a, o)))
        elif isinstance(module, SATURATING):
            handles.append(module.register_forward_hook(lambda m, a, o, n=name: on_saturating(n, m, a, o)))
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            handles.append(module.register_forward_pre_hook(lambda m, a, n=name: on_norm(n, m, a)))
    try:
        yield activity
    finally:
        for h in handles:
            h.remove()
