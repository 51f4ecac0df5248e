"""Re-initialize a model's Conv and Linear layers with a named scheme, matched to the activation after each layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

from torchmedic.batch import Batch, unpack
from torchmedic.clone import clone_model
from torchmedic.errors import InputError, ModelError
from torchmedic.guard import preserved
from torchmedic.remedies.head_prior import head_prior
from torchmedic.remedies.lsuv import LsuvConfig, rescale_to_unit_variance
from torchmedic.remedies.nonlinearity import WEIGHT_LAYERS, Nonlinearity, from_registration, from_trace
from torchmedic.tracing import Trace, trace_forward

Scheme = Literal["kaiming", "xavier", "orthogonal", "lsuv", "head"]
SCHEMES: tuple[str, ...] = ("kaiming", "xavier", "orthogonal", "lsuv", "head")
Include = Sequence[str] | Callable[[str, nn.Module], bool] | None

HEAD_WEIGHT_GAIN = 1e-2  # xavier gain for the head in scheme "head": logits start within ~1% of the prior


@dataclass(frozen=True)
class LayerInit:
    """What init_weights did to one layer, with the weight std before and after."""

    scope: str
    kind: str  # the module's class name
    rule: str  # the torch.nn.init call, with its arguments
    nonlinearity: str  # the activation assumed to follow ("none" for a plain linear output)
    gain: float
    nonlinearity_source: str
    std_before: float
    std_after: float
    bias: str  # "zeroed", "no bias", or what the head's bias now holds
    note: str = ""


@dataclass(frozen=True)
class Untouched:
    """A module with parameters that init_weights left as it was, and why."""

    scope: str
    kind: str
    reason: str


@dataclass(frozen=True)
class InitRecord:
    """Every layer init_weights changed, and the parametrized modules it did not touch."""

    scheme: str
    layers: tuple[LayerInit, ...]
    untouched: tuple[Untouched, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def layer(self, scope: str) -> LayerInit:
        """The record of the layer named `scope`."""
        found = [layer for layer in self.layers if layer.scope == scope]
        if not found:
            raise KeyError(f"{scope!r} was not initialized; initialized: {[layer.scope for layer in self.layers]}")
        return found[0]


def init_weights(
    model: nn.Module,
    scheme: Scheme = "kaiming",
    *,
    include: Include = None,
    batch: Any = None,
    generator: torch.Generator | None = None,
    lsuv: LsuvConfig | None = None,
) -> InitRecord:
    """Re-initialize the model's Conv/Linear layers in place with `scheme` and return what changed, layer by layer.

    Schemes: "kaiming" (the classic recipe: kaiming_normal_(mode="fan_out") for convolutions, xavier_uniform_ for
    linear layers, both with the gain of the activation that follows; biases zeroed), "xavier" (xavier_uniform_
    everywhere), "orthogonal", "lsuv" (orthogonal, then each layer rescaled in forward order until its output
    variance on `batch` is 1) and "head" (only the final layer: bias = log class prior of `batch`'s targets, so the
    loss at init is the label entropy; weights small). `include` picks layers: None for every Conv and Linear layer,
    a list of module names, or a predicate `(name, module) -> bool`. Embedding, norm and recurrent layers are never
    touched; the record lists them. With `batch`, the activation after each layer is read from a traced forward pass
    (functional calls included); without it, from the next registered module. Weights are drawn from `generator`,
    else from torch's global generator, as torch.nn.init does; forward passes leave buffers and RNGs as they were.
    """
    if scheme not in SCHEMES:
        raise InputError(f"unknown init scheme {scheme!r}: choose one of {', '.join(SCHEMES)}.")
    if not isinstance(model, nn.Module):
        raise InputError(f"model is a {type(model).__name__}, not a torch.nn.Module.")
    parsed = _batch(model, batch, scheme)
    selected = _select(model, include)
    trace = None
    if parsed is not None:
        trace = _trace(model, parsed)
    order = _forward_order(trace, selected)
    if scheme == "head" and parsed is not None and trace is not None:  # _batch made sure there is a batch
        return _init_head(model, order, parsed, trace, generator)
    layers = {name: _nonlinearity(model, trace, name) for name in order}
    befores = {name: _std(_weight(selected[name])) for name in order}
    rules = {name: _draw(scheme, selected[name], layers[name], generator) for name in order}
    notes = {name: "" for name in order}
    if scheme == "lsuv" and parsed is not None:
        notes = _run_lsuv(model, order, parsed, lsuv or LsuvConfig())
    records = tuple(
        LayerInit(name, type(selected[name]).__name__, rules[name], layers[name].seen, layers[name].gain,
                  layers[name].source, befores[name], _std(_weight(selected[name])), _bias_text(selected[name]),
                  _join(notes[name], _approximation(layers[name])))
        for name in order
    )  # fmt: skip
    return InitRecord(scheme, records, _untouched(model, selected))


def _batch(model: nn.Module, batch: Any, scheme: str) -> Batch | None:
    if batch is None:
        if scheme in ("lsuv", "head"):
            need = "its targets set the output bias" if scheme == "head" else "it measures each layer's output variance"
            raise InputError(f"init_weights(scheme={scheme!r}) needs a batch: {need}. Pass batch=next(iter(loader)).")
        return None
    parsed = batch if isinstance(batch, Batch) else unpack(batch)
    if scheme == "head" and parsed.targets is None:
        raise InputError("init_weights(scheme='head') needs a batch with targets, e.g. (inputs, labels).")
    device = next((p.device for p in model.parameters()), None)
    return parsed.to(device)


def _trace(model: nn.Module, batch: Batch) -> Trace:
    with preserved(model):  # a forward pass in train mode would move BatchNorm statistics
        try:
            trace, _ = trace_forward(model, batch)
        except Exception as exc:
            shapes = [tuple(t.shape) for t in (batch.inputs if isinstance(batch.inputs, tuple) else (batch.inputs,))]
            raise ModelError(
                f"init_weights runs the model once on `batch` to see which activation follows each layer; it raised "
                f"on inputs of shape {shapes}: {type(exc).__name__}: {exc}"
            ) from exc
    return trace


def _select(model: nn.Module, include: Include) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    if include is None:
        return {n: m for n, m in modules.items() if isinstance(m, WEIGHT_LAYERS)}
    if callable(include):
        return {n: m for n, m in modules.items() if isinstance(m, WEIGHT_LAYERS) and include(n, m)}
    if isinstance(include, str):
        include = [include]
    unknown = [n for n in include if n not in modules]
    if unknown:
        layers = [n for n, m in modules.items() if isinstance(m, WEIGHT_LAYERS)]
        raise InputError(
            f"include names {unknown}, which are not modules of the model; its Conv/Linear layers: {layers}."
        )
    wrong = [f"{n} ({type(modules[n]).__name__})" for n in include if not isinstance(modules[n], WEIGHT_LAYERS)]
    if wrong:
        raise InputError(f"init_weights only re-initializes Conv and Linear layers; include names {', '.join(wrong)}.")
    return {n: modules[n] for n in include}


def _forward_order(trace: Trace | None, selected: dict[str, nn.Module]) -> list[str]:
    # Forward order when traced (layers that did not run come last), registration order otherwise.
    ran = [] if trace is None else [n for n in trace.module_outputs if n in selected]
    return ran + [n for n in selected if n not in ran]


def _nonlinearity(model: nn.Module, trace: Trace | None, name: str) -> Nonlinearity:
    found = None if trace is None else from_trace(trace, name)
    return found if found is not None else from_registration(model, name)


def _draw(scheme: str, layer: nn.Module, nl: Nonlinearity, generator: torch.Generator | None) -> str:
    weight = _weight(layer)
    with torch.no_grad():
        bias = _bias(layer)
        if bias is not None:
            bias.zero_()
        if scheme == "kaiming" and isinstance(layer, nn.modules.conv._ConvNd):
            slope = nl.slope if nl.init_name == "leaky_relu" else 0.0
            nn.init.kaiming_normal_(weight, a=slope, mode="fan_out", nonlinearity=nl.init_name, generator=generator)
            slope_text = f", a={slope:g}" if nl.init_name == "leaky_relu" else ""
            return f"kaiming_normal_(mode='fan_out', nonlinearity='{nl.init_name}'{slope_text})"
        if scheme in ("kaiming", "xavier"):
            nn.init.xavier_uniform_(weight, gain=nl.gain, generator=generator)
            return f"xavier_uniform_(gain={nl.gain:.4g})"
        gain = 1.0 if scheme == "lsuv" else nl.gain  # LSUV sets the scale itself, from the measured variance
        nn.init.orthogonal_(weight, gain=gain, generator=generator)
        return f"orthogonal_(gain={gain:.4g})" + (", then rescaled to unit output variance" if scheme == "lsuv" else "")


def _run_lsuv(model: nn.Module, order: list[str], batch: Batch, config: LsuvConfig) -> dict[str, str]:
    # Measure on a copy in train mode (as training sees it), then copy only the rescaled weights back.
    copy = clone_model(model).train()
    with preserved():
        steps = rescale_to_unit_variance(copy, order, batch, config)
    originals, copies = dict(model.named_modules()), dict(copy.named_modules())
    with torch.no_grad():
        for name in order:
            _weight(originals[name]).copy_(_weight(copies[name]))
    return {
        name: (f"output variance {s.variance:.3f} after {s.iterations} rescaling{'' if s.iterations == 1 else 's'}"
               + ("" if s.converged else f", not within {config.tolerance} of 1"))
        for name, s in steps.items()
    }  # fmt: skip


def _init_head(
    model: nn.Module, order: list[str], batch: Batch, trace: Trace, generator: torch.Generator | None
) -> InitRecord:
    ran = [n for n in order if n in trace.module_outputs]
    if not ran:
        raise InputError("init_weights(scheme='head') found no Conv or Linear layer that runs in the forward pass.")
    name = ran[-1]
    layer = dict(model.named_modules())[name]
    out_features = int(getattr(layer, "out_features", getattr(layer, "out_channels", 0)))
    prior = head_prior(batch.loss_targets, out_features)
    nl = _nonlinearity(model, trace, name)
    weight, bias = _weight(layer), _bias(layer)
    if bias is None:
        raise InputError(
            f"init_weights(scheme='head'): the final layer {name} ({type(layer).__name__}) has no bias to hold the "
            "class prior; build it with bias=True."
        )
    before = _std(weight)
    with torch.no_grad():
        nn.init.xavier_uniform_(weight, gain=HEAD_WEIGHT_GAIN, generator=generator)
        bias.copy_(prior.bias.to(bias.device, bias.dtype))
    note = f"{nl.seen} follows this layer: the prior holds for the logits, not after it" if nl.seen != "none" else ""
    record = LayerInit(name, type(layer).__name__, f"xavier_uniform_(gain={HEAD_WEIGHT_GAIN:g})", nl.seen, nl.gain,
                       nl.source, before, _std(weight), prior.description, note)  # fmt: skip
    others = {n: m for n, m in dict(model.named_modules()).items() if isinstance(m, WEIGHT_LAYERS) and n != name}
    kept = tuple(Untouched(n, type(m).__name__, "kept: scheme 'head' changes only the final layer")
                 for n, m in others.items())  # fmt: skip
    return InitRecord("head", (record,), kept + _untouched(model, {name: layer, **others}))


def _weight(layer: nn.Module) -> torch.Tensor:
    weight = layer.weight
    if isinstance(weight, nn.parameter.UninitializedParameter):
        raise InputError(f"{type(layer).__name__} is lazy and not built yet: run one forward pass before init_weights.")
    if not isinstance(weight, torch.Tensor):
        raise InputError(f"{type(layer).__name__}.weight is a {type(weight).__name__}, not a tensor.")
    return weight


def _bias(layer: nn.Module) -> torch.Tensor | None:
    bias = getattr(layer, "bias", None)
    return bias if isinstance(bias, torch.Tensor) else None


def _std(weight: torch.Tensor) -> float:
    return float(weight.detach().double().std()) if weight.numel() > 1 else 0.0


def _bias_text(layer: nn.Module) -> str:
    return "zeroed" if _bias(layer) is not None else "no bias"


def _approximation(nl: Nonlinearity) -> str:
    return f"torch has no gain for {nl.seen}: used ReLU's" if nl.approximated else ""


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _untouched(model: nn.Module, selected: dict[str, nn.Module]) -> tuple[Untouched, ...]:
    kept = []
    for name, module in model.named_modules():
        if name in selected or not any(True for _ in module.parameters(recurse=False)):
            continue
        kept.append(Untouched(name, type(module).__name__, _reason(module)))
    return tuple(kept)


def _reason(module: nn.Module) -> str:
    if isinstance(module, WEIGHT_LAYERS):
        return "kept: not selected by include"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "kept: the N(0, 1) default of an embedding already gives unit-variance outputs"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)):
        return "kept: weight 1, bias 0 is the identity a norm layer should start from"
    if isinstance(module, nn.RNNBase):
        return "kept: recurrent weights are outside these schemes (nn.init.orthogonal_ suits weight_hh)"
    return "kept: not a Conv or Linear layer"
