"""A static look at the model, the optimizer and the loss: what the output is made of, which parameters train,
dropout rates, BatchNorm, the shapes the loss sees."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from torchmedic import signal_names as N
from torchmedic.batch import consumed_output
from torchmedic.clone import unwrap
from torchmedic.context import Context
from torchmedic.layers import weight_gain, weight_layers
from torchmedic.lines import module_ref
from torchmedic.probes.registry import probe
from torchmedic.tracing import TRANSPARENT, Op, Trace, trace_forward


def distinct_rows(weight: torch.Tensor) -> int:
    """How many different rows (output units) a weight matrix has, up to float tolerance. Rows are compared by two
    fixed random projections, not element by element: equal rows project equally, different ones almost never do,
    and a product costs a fraction of sorting whole rows of a large layer."""
    rows = weight.detach().float().reshape(weight.shape[0], -1)
    scale = float(rows.abs().max()) or 1.0
    directions = torch.randn(rows.shape[1], 2, generator=torch.Generator().manual_seed(0)).to(rows.device)
    tolerance = scale * 1e-5 * float(directions.abs().sum(0).max())
    keys = torch.round(rows @ directions / tolerance).to(torch.int64)
    return int(torch.unique(keys, dim=0).shape[0])


def finite(tensor: torch.Tensor) -> bool:
    """No NaN or Inf in `tensor`: its sum is finite exactly then, unless finite values overflow it (checked then)."""
    t = tensor.detach()
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def nonfinite_tensors(model: nn.Module) -> dict[str, int]:
    """Parameters and floating-point buffers holding NaN or Inf, with how many such values each holds."""
    tensors = [(n, t.detach()) for n, t in [*model.named_parameters(), *model.named_buffers()]]
    counts = {n: int((~torch.isfinite(t)).sum()) for n, t in tensors if t.is_floating_point() and not finite(t)}
    return {n: c for n, c in counts.items() if c}


@probe("structure", order=20, forwards=2)  # a traced forward costs about two
def structure(ctx: Context) -> None:
    s, model, spec = ctx.signals, ctx.base, ctx.spec
    named = dict(unwrap(model).named_parameters())  # names as the optimizer recipe holds them
    trainable = {n for n, p in named.items() if p.requires_grad}
    s.emit(N.MODEL_CLASS, type(ctx.model).__name__)
    s.emit(N.MODEL_PARAMS, sum(p.numel() for p in named.values()))
    s.emit(N.MODEL_TRAINABLE_PARAMS, sum(named[n].numel() for n in trainable))
    s.emit(N.MODEL_FROZEN, sorted(set(named) - trainable))
    s.emit(N.OPTIM_CLASS, spec.name)
    s.emit(N.OPTIM_DEFAULT, spec.is_default)
    s.emit(N.OPTIM_LR, spec.lr)
    s.emit(N.OPTIM_WEIGHT_DECAY, float(spec.hyper("weight_decay", 0.0) or 0.0))
    s.emit(N.OPTIM_MOMENTUM, float(spec.hyper("momentum", 0.0) or 0.0))
    s.emit(N.OPTIM_HELD, sorted(spec.held))
    total = max(1, sum(p.numel() for p in named.values()))
    s.emit(N.OPTIM_HELD_SHARE, sum(named[n].numel() for n in spec.held if n in named) / total)
    s.emit(N.OPTIM_UNHELD_TRAINABLE, sorted(trainable - spec.held))
    s.emit(N.OPTIM_FOREIGN, spec.foreign)
    s.emit(N.OPTIM_DECOUPLED, spec.name == "AdamW" or bool(spec.hyper("decoupled_weight_decay", False)))
    dropouts = {n: float(m.p) for n, m in model.named_modules() if isinstance(m, nn.modules.dropout._DropoutNd)}
    batchnorms = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    s.emit(N.MODEL_BATCHNORM, batchnorms)
    for name, count in nonfinite_tensors(model).items():
        s.emit(N.WEIGHT_NONFINITE, count, name)
    for name, module in weight_layers(model):
        gain = weight_gain(module)
        if gain is not None:
            s.emit(N.WEIGHT_GAIN, gain, name)
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and weight.shape[0] > 1 and finite(weight):
            s.emit(N.WEIGHT_DISTINCT_ROWS, distinct_rows(weight), name)
            s.emit(N.WEIGHT_ROWS, int(weight.shape[0]), name)
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor):
            s.emit(N.BIAS_MEAN, float(bias.detach().float().mean()), name)
    traced = clone_for_trace(ctx)
    key = consumed_output(ctx.loss_fn, ctx.outputs, ctx.train[0].loss_targets)
    trace, _ = trace_forward(traced, ctx.train[0], key)
    hidden = unregistered(traced, trace)
    if hidden:
        s.emit(N.MODEL_UNREGISTERED, sorted(hidden))
        s.emit(N.MODEL_UNREGISTERED_PARAMS, sum(hidden.values()))
    for op in trace.ops:
        if op.name.startswith("dropout") and "p" in op.args:
            dropouts.setdefault(op.scope or f"F.{op.name}#{op.ordinal}", float(op.args["p"]))
    functional = [
        [op.name, op.ordinal, float(op.args["p"]), op.scope]
        for op in trace.ops
        if op.name.startswith("dropout") and "p" in op.args and "Dropout" not in trace.module_types.get(op.scope, "")
    ]
    s.emit(N.MODEL_DROPOUT, dropouts)
    if functional:
        s.emit(N.MODEL_FUNCTIONAL_DROPOUT, functional)
    final = trace.output_op()
    if final is not None:
        s.emit(N.OUTPUT_OP, final.name)
        s.emit(N.OUTPUT_OP_SCOPE, final.scope)
        s.emit(N.OUTPUT_OP_ORDINAL, final.ordinal)
        s.emit(N.OUTPUT_OP_MODULE, trace.module_types.get(final.scope, ""))
        if "dim" in final.args:
            s.emit(N.OUTPUT_OP_DIM, final.args["dim"])
        logit: Op | None = final
        if final.name in ("softmax", "log_softmax") and final.inputs:
            logit = trace.producer(final.inputs[0])
            while logit is not None and logit.name in TRANSPARENT and logit.inputs:
                logit = trace.producer(logit.inputs[0])
        if logit is not None:
            s.emit(N.OUTPUT_LOGIT_OP, logit.name)
            s.emit(N.OUTPUT_LOGIT_OP_SCOPE, logit.scope)
            s.emit(N.OUTPUT_LOGIT_OP_ORDINAL, logit.ordinal)
    layers = [n for n, _ in weight_layers(model)]
    heads = [n for n in layers if n in trace.module_outputs]
    if heads:
        s.emit(N.MODEL_HEAD, heads[-1])
        s.emit(N.MODEL_FOLLOWING, {n: getattr(trace.following_activation(n), "name", "") for n in heads})
    softmax_dims = [op.args.get("dim") for op in trace.ops if op.name in ("softmax", "log_softmax")]
    s.emit(N.MODEL_SOFTMAX_DIMS, softmax_dims)


def module_containers(model: nn.Module) -> Iterator[tuple[nn.Module, str, list[nn.Module] | dict[str, nn.Module]]]:
    """(owner, attribute, container) for every plain Python list, tuple or dict of modules kept as an attribute of
    the model or one of its modules: layers nn.Module does not register."""
    for owner in model.modules():
        for attr, value in vars(owner).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, (list, tuple)) and value and all(isinstance(m, nn.Module) for m in value):
                yield owner, attr, list(value)
            elif isinstance(value, dict) and value and all(isinstance(m, nn.Module) for m in value.values()):
                yield owner, attr, dict(value)


def unregistered(model: nn.Module, trace: Trace) -> dict[str, int]:
    """Layers kept in plain containers whose parameters forward used although model.parameters() does not list
    them: name (as the user's code writes it) -> parameter tensors."""
    listed = {id(p) for p in model.parameters()}
    hidden = {i for i in trace.parameters if i not in listed}
    names = {id(m): n for n, m in model.named_modules()}
    found: dict[str, int] = {}
    for owner, attr, container in module_containers(model):
        items = container.items() if isinstance(container, dict) else enumerate(container)
        prefix = module_ref(names.get(id(owner), ""))
        for key, module in items:
            used = sum(id(p) in hidden for p in module.parameters())
            if used:
                found[f"{prefix}.{attr}[{key!r}]"] = used
    return found


def clone_for_trace(ctx: Context) -> nn.Module:
    model = ctx.copy()
    model.eval()
    return model
