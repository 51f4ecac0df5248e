"""Which activation follows each layer, so an init can use the matching gain (ReLU, LeakyReLU slope, tanh, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from torchmedic.tracing import Trace

InitName = Literal["relu", "leaky_relu", "selu", "tanh", "sigmoid", "linear"]

# The activation as seen in a forward pass -> the nonlinearity torch.nn.init computes a gain for.
INIT_NAMES: dict[str, InitName] = {
    "relu": "relu", "relu6": "relu", "clamp_min": "relu",
    "leaky_relu": "leaky_relu",
    "selu": "selu",
    "tanh": "tanh", "hardtanh": "tanh",
    "sigmoid": "sigmoid", "hardsigmoid": "sigmoid",
    # ReLU-like smooth activations: torch has no gain for them; ReLU's sqrt(2) is the usual approximation.
    "gelu": "relu", "silu": "relu", "elu": "relu", "celu": "relu", "mish": "relu", "softplus": "relu",
    "hardswish": "relu",
}  # fmt: skip
APPROXIMATED = frozenset({"gelu", "silu", "elu", "celu", "mish", "softplus", "hardswish", "relu6", "hardtanh"})

ACTIVATION_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu", nn.SELU: "selu", nn.Tanh: "tanh",
    nn.Hardtanh: "hardtanh", nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "hardsigmoid", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.ELU: "elu", nn.CELU: "celu", nn.Mish: "mish", nn.Softplus: "softplus", nn.Hardswish: "hardswish",
}  # fmt: skip
# Modules that pass a layer's output on to its activation unchanged in kind (conv -> BN -> ReLU).
PASS_THROUGH_MODULES = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.modules.dropout._DropoutNd, nn.MaxPool1d,
    nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Unflatten, nn.Identity,
)  # fmt: skip
WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)

FROM_TRACE = "traced forward pass"
FROM_REGISTRATION = "next module in registration order (no batch: functional calls in forward() are not seen)"
ASSUMED_FUNCTIONAL = (
    "assumed ReLU: no activation module anywhere, so forward() must apply them as functions (no batch to trace)"
)


@dataclass(frozen=True)
class Nonlinearity:
    """The activation applied to a layer's output, and the torch.nn.init gain that keeps its variance."""

    seen: str  # the activation as found ("relu", "gelu", ...), "none" when the output goes on unchanged
    slope: float  # negative slope of a leaky ReLU, 0 otherwise
    source: str  # how it was found: FROM_TRACE, FROM_REGISTRATION, ASSUMED_FUNCTIONAL

    @property
    def init_name(self) -> InitName:
        """The name torch.nn.init.calculate_gain takes: relu, leaky_relu, selu, tanh, sigmoid or linear."""
        return INIT_NAMES.get(self.seen, "linear")

    @property
    def gain(self) -> float:
        return float(nn.init.calculate_gain(self.init_name, self.slope if self.init_name == "leaky_relu" else None))

    @property
    def approximated(self) -> bool:
        """True when torch has no gain for this activation and the one of its closest kin is used."""
        return self.seen in APPROXIMATED


def from_trace(trace: Trace, module: str) -> Nonlinearity | None:
    """The activation after `module` in a traced forward pass; None when the module did not run in it."""
    if module not in trace.module_outputs:
        return None
    op = trace.following_activation(module)
    if op is None:
        return Nonlinearity("none", 0.0, FROM_TRACE)
    slope = float(op.args.get("negative_slope", 0.01)) if op.name == "leaky_relu" else 0.0
    return Nonlinearity(op.name, slope, FROM_TRACE)


def from_registration(model: nn.Module, module: str) -> Nonlinearity:
    """The activation after `module` guessed from the leaf modules registered after it (no forward pass)."""
    leaves = [(name, m) for name, m in model.named_modules() if not any(True for _ in m.children())]
    if not any(type(m) in ACTIVATION_MODULES for _, m in leaves):
        last_layer = [name for name, m in leaves if isinstance(m, WEIGHT_LAYERS)][-1:]
        return Nonlinearity("none" if [module] == last_layer else "relu", 0.0, ASSUMED_FUNCTIONAL)
    names = [name for name, _ in leaves]
    start = names.index(module) + 1 if module in names else len(names)
    for _, m in leaves[start:]:
        if type(m) in ACTIVATION_MODULES:
            slope = float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else 0.0
            return Nonlinearity(ACTIVATION_MODULES[type(m)], slope, FROM_REGISTRATION)
        if not isinstance(m, PASS_THROUGH_MODULES):
            break
    return Nonlinearity("none", 0.0, FROM_REGISTRATION)
