"""Which torch operations a forward pass runs, in which module, on which tensors.

Module hooks miss functional calls (`F.softmax(x)` in `forward`), so the trace records every torch function
through a `TorchFunctionMode`; module hooks only say which module was running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name

from torchmedic.batch import Batch, pick

# Ops that move or reshape values without changing them: looked through when asking "what made this tensor".
TRANSPARENT = frozenset(
    {
        "view",
        "reshape",
        "flatten",
        "squeeze",
        "unsqueeze",
        "contiguous",
        "clone",
        "to",
        "float",
        "double",
        "type",
        "transpose",
        "permute",
        "t",
        "__getitem__",
        "expand",
        "view_as",
        "reshape_as",
        "detach",
        "cpu",
        "cuda",
    }
)
ACTIVATIONS = frozenset(
    {
        "relu",
        "leaky_relu",
        "gelu",
        "silu",
        "elu",
        "selu",
        "celu",
        "mish",
        "softplus",
        "tanh",
        "sigmoid",
        "hardtanh",
        "relu6",
        "hardsigmoid",
        "hardswish",
        "clamp",
        "clip",
        "clamp_min",
        "clamp_max",
        "abs",
        "softmax",
        "log_softmax",
        "exp",
        "square",
    }
)
# Ops that pass a layer's output on to its nonlinearity without being one (conv -> BN -> ReLU).
PASS_THROUGH = TRANSPARENT | {
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "dropout",
    "dropout2d",
    "max_pool2d",
    "max_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "add",
    "__add__",
}


def op_name(func: Any) -> str:
    """A short, normalized name: `torch.nn.functional.relu`, `Tensor.relu` and `relu_` are all "relu"."""
    full = resolve_name(func) or getattr(func, "__name__", repr(func))
    name = full.rsplit(".", 1)[-1]
    if name == "__get__":
        name = full.rsplit(".", 2)[-2]
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


@dataclass
class Op:
    """One torch function call of the forward pass."""

    index: int
    name: str
    ordinal: int  # how many earlier calls had the same name
    scope: str  # the innermost module that was running ("" for the top-level forward)
    inputs: list[int]  # ids of input tensors
    outputs: list[int]  # ids of output tensors
    args: dict[str, Any] = field(default_factory=dict)  # small scalar arguments (dim, p, min, max, ...)


@dataclass
class Trace:
    """The ops of one forward pass and the modules that produced which tensors."""

    ops: list[Op]
    module_outputs: dict[str, int]  # module name -> id of its output tensor
    module_types: dict[str, str]
    output_id: int | None
    parameters: dict[int, nn.Parameter] = field(default_factory=dict)  # every parameter forward read, by id

    def producer(self, tensor_id: int) -> Op | None:
        """The last op that output this tensor."""
        return next((op for op in reversed(self.ops) if tensor_id in op.outputs), None)

    def consumers(self, tensor_id: int) -> list[Op]:
        return [op for op in self.ops if tensor_id in op.inputs]

    def output_op(self) -> Op | None:
        """The last value-changing op that made the model's output (views and reshapes looked through)."""
        op = None if self.output_id is None else self.producer(self.output_id)
        while op is not None and op.name in TRANSPARENT and op.inputs:
            op = self.producer(op.inputs[0])
        return op

    def following_activation(self, module: str) -> Op | None:
        """The nonlinearity op applied to a module's output (its args hold e.g. the LeakyReLU slope), looking
        through norms, pooling, dropout and reshapes."""
        frontier = [self.module_outputs[module]] if module in self.module_outputs else []
        seen: set[int] = set()
        while frontier:
            tid = frontier.pop(0)
            if tid in seen:
                continue
            seen.add(tid)
            for op in self.consumers(tid):
                if op.name in ACTIVATIONS:
                    return op
                if op.name in PASS_THROUGH:
                    frontier.extend(op.outputs)
                elif op.name not in {"dim", "size", "shape", "numel"}:
                    return None
        return None


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


_SCALAR_ARGS = ("dim", "p", "min", "max", "negative_slope", "training", "inplace", "beta", "threshold")


class _Recorder(TorchFunctionMode):
    def __init__(self, scopes: list[str]) -> None:
        super().__init__()
        self.scopes = scopes
        self.ops: list[Op] = []
        self.counts: dict[str, int] = {}
        self.keep: list[torch.Tensor] = []  # hold every tensor until the trace ends, so ids stay unique
        self.parameters: dict[int, nn.Parameter] = {}  # every parameter an op read, by id

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outputs = list(_tensors(out))
        if outputs:
            name = op_name(func)
            inputs = list(_tensors(args)) + list(_tensors(kwargs))
            self.keep.extend(inputs + outputs)
            self.parameters.update((id(t), t) for t in inputs if isinstance(t, nn.Parameter))
            scalars = {k: v for k, v in kwargs.items() if k in _SCALAR_ARGS and isinstance(v, (int, float, bool))}
            if name in ("softmax", "log_softmax") and "dim" not in scalars and len(args) > 1:
                scalars["dim"] = args[1]
            ordinal = self.counts.get(name, 0)
            self.counts[name] = ordinal + 1
            scope = self.scopes[-1] if self.scopes else ""
            self.ops.append(
                Op(len(self.ops), name, ordinal, scope, [id(t) for t in inputs], [id(t) for t in outputs], scalars)
            )
        return out


def trace_forward(model: nn.Module, batch: Batch, output_key: Any = None) -> tuple[Trace, Any]:
    """Run `model` on `batch` once (no grad) and return the trace and the outputs; the traced output is the element
    at `output_key` of a tuple or dict (the one the loss reads), else the primary one. Only the hooks it adds are
    removed again: in train mode BatchNorm updates its running statistics, so trace a copy or an eval-mode model."""
    scopes: list[str] = []
    module_outputs: dict[str, int] = {}
    recorder = _Recorder(scopes)
    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name: scopes.append(n)))
        handles.append(
            module.register_forward_hook(lambda m, a, o, n=name: _leave(scopes, module_outputs, recorder.keep, n, o))
        )
    try:
        with torch.no_grad(), recorder:
            outputs = batch.run(model)
    finally:
        for h in handles:
            h.remove()
    primary = pick(outputs, output_key)
    trace = Trace(
        recorder.ops,
        module_outputs,
        {n: type(m).__name__ for n, m in model.named_modules()},
        None if primary is None else id(primary),
        recorder.parameters,
    )
    trace.keep = recorder.keep + ([primary] if primary is not None else [])  # type: ignore[attr-defined]
    return trace, outputs


def _leave(scopes: list[str], module_outputs: dict[str, int], keep: list[torch.Tensor], name: str, out: Any) -> None:
    if scopes:
        scopes.pop()
    first = next(_tensors(out), None)
    if first is not None:
        keep.append(first)
        module_outputs[name] = id(first)


class _Skip(TorchFunctionMode):
    def __init__(self, name: str, ordinal: int) -> None:
        super().__init__()
        self.name, self.ordinal, self.count = name, ordinal, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if op_name(func) == self.name:
            self.count += 1
            if self.count - 1 == self.ordinal:
                return next(_tensors(args))
        return func(*args, **kwargs)


@contextmanager
def skipping(name: str, ordinal: int) -> Iterator[None]:
    """Within the block, the `ordinal`-th call of op `name` returns its input unchanged (the op is removed)."""
    with _Skip(name, ordinal):
        yield


class WithoutOp(nn.Module):
    """The model with one op of its forward removed, e.g. the softmax at the end: an intervention on a copy."""

    def __init__(self, module: nn.Module, name: str, ordinal: int) -> None:
        super().__init__()
        self.module, self.name, self.ordinal = module, name, ordinal

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with skipping(self.name, self.ordinal):
            return self.module(*args, **kwargs)
