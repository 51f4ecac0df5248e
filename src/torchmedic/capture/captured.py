"""The setup diagnose() takes, read from what a script did before its first optimizer step: the model is the
top-level module that ran with the optimizer's parameters, the loss is the call that produced the tensor
`backward()` was called on, the loader is the DataLoader that yielded the batch, and the steps between them are
found by trying views on the recorded tensors (see `views`). The loss value is recomputed to prove the match."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchmedic.batch import BatchKeys, feeds, primary_output
from torchmedic.capture.adapters import ViewedModel, ViewedTargets
from torchmedic.capture.recorder import LossCall, Recorder
from torchmedic.capture.views import ACTIVATIONS, View, element, find_view, same
from torchmedic.errors import InputError


class CaptureError(InputError):
    """Part of the setup could not be read from the running script; the message names which part and why."""


@dataclass
class Captured:
    """What diagnose() is called with, and how each part was found (`notes`, for the report)."""

    model: nn.Module
    loader: Iterable[Any]
    loss_fn: Callable[..., Any]
    optimizer: torch.optim.Optimizer
    keys: BatchKeys = field(default_factory=BatchKeys)
    notes: list[str] = field(default_factory=list)


def captured_setup(recorder: Recorder, optimizer: torch.optim.Optimizer) -> Captured:
    """The setup of the script's first optimizer step; CaptureError names the part that cannot be read."""
    loss = _loss(recorder)
    model = _model(recorder, optimizer, loss)
    call = recorder.calls[id(model)]
    if recorder.batch is None:
        raise CaptureError("the batches did not come from a torch DataLoader, so there is no loader to diagnose")
    loader, batch = recorder.batch.loader, recorder.batch.batch
    if len(call.args) != 1 or not isinstance(call.args[0], torch.Tensor):
        raise CaptureError(f"the model was called with {len(call.args)} positional inputs; torchmedic captures one")
    inputs = _view(find_view(batch, call.args[0]), "the model's input", call.args[0], "the batch")
    targets = _view(find_view(batch, loss.target), "the loss's target", loss.target, "the batch")
    outputs = _view(find_view(call.output, loss.input, (None, *ACTIVATIONS)), "the loss's input", loss.input,
                    "the model's output")  # fmt: skip
    keys = _keys(batch, inputs.key, targets.key)
    base = loss.fn if isinstance(loss.fn, nn.Module) else functools.partial(loss.fn, **loss.kwargs)
    loss_fn = ViewedTargets(base, View(dtype=targets.dtype, shape=targets.shape)) if targets.changes_tensor else base
    inner_in, inner_out = View(None, None, inputs.shape, inputs.dtype), outputs
    wrapped = ViewedModel(model, inner_in, inner_out) if inner_in.changes_tensor or outputs != View() else model
    _check_value(loss, loss_fn, outputs(call.output), element(batch, targets.key))
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    ran = "it ran with" if any(id(p) in held for p in model.parameters()) else "it holds none of"
    notes = [
        f"captured at the script's first optimizer step: model {type(model).__name__} ({ran} the "
        f"{type(optimizer).__name__}'s parameters), loss {_loss_name(loss)}, loader {type(loader).__name__}",
        f"the script calls loss({outputs.describe('output')}, {targets.describe('batch')}) on "
        f"output = model({inputs.describe('batch')})",
    ]
    return Captured(wrapped, loader, loss_fn, optimizer, keys, notes)


def _model(recorder: Recorder, optimizer: torch.optim.Optimizer, loss: LossCall) -> nn.Module:
    """The top-level module sharing most parameters with the optimizer; when none shares any (an optimizer built
    over another instance), the one whose output went into the loss, so that diagnose() sees the mismatch."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    shared = [(sum(id(p) in held for p in c.module.parameters()), c.module) for c in recorder.calls.values()]
    best = max(shared, key=lambda pair: pair[0], default=(0, None))
    if best[1] is not None and best[0] > 0:
        return best[1]
    feeding = [c.module for c in recorder.calls.values() if _output_feeds(loss.result, c.output)]
    if not feeding:
        raise CaptureError(
            f"no module whose forward ran before the first step holds the {type(optimizer).__name__}'s parameters "
            "or produced the loss's input"
        )
    return feeding[-1]


def _output_feeds(root: torch.Tensor, output: Any) -> bool:
    out = primary_output(output)
    return isinstance(out, torch.Tensor) and out.grad_fn is not None and feeds(root, out)


def _loss(recorder: Recorder) -> LossCall:
    if not recorder.roots:
        raise CaptureError("backward() was not called before the first optimizer step, so there is no loss")
    if not recorder.losses:
        raise CaptureError(
            "no loss call was seen: torchmedic recognizes torch.nn loss modules and torch.nn.functional losses "
            "called in the training loop, not a loss written out by hand"
        )
    root = recorder.roots[-1]
    feeding = [call for call in recorder.losses if feeds(root, call.result)]
    if not feeding:
        raise CaptureError("the tensor backward() was called on does not come from any loss call torchmedic saw")
    return feeding[-1]


def _view(view: View | None, what: str, seen: Any, source: str) -> View:
    if view is None:
        shape = tuple(seen.shape) if isinstance(seen, torch.Tensor) else type(seen).__name__
        raise CaptureError(
            f"{what} (shape {shape}) is not {source} or a reshape, cast or activation of it: the script computes "
            "it in a way torchmedic cannot repeat"
        )
    return view


def _keys(batch: Any, inputs: Any, targets: Any) -> BatchKeys:
    """Where diagnose() finds inputs and targets in a batch: (inputs, targets) tuples, or the dict keys."""
    if isinstance(batch, Mapping):
        return BatchKeys(inputs, targets)
    if isinstance(batch, (tuple, list)) and (inputs, targets) == (0, 1):
        return BatchKeys()
    raise CaptureError(
        f"the model reads batch[{inputs!r}] and the loss batch[{targets!r}]; torchmedic reads (inputs, targets) "
        "tuples and dicts"
    )


def _check_value(loss: LossCall, loss_fn: Callable[..., Any], outputs: Any, targets: Any) -> None:
    """Recompute the loss from the recorded tensors: the captured setup must give the script's own value."""
    with torch.no_grad():
        try:
            value = loss_fn(outputs.detach(), targets.to(outputs.device))
        except Exception as exc:
            raise CaptureError(f"the captured loss cannot be recomputed: {type(exc).__name__}: {exc}") from exc
    if not same(value.to(loss.result.dtype), loss.result):
        raise CaptureError(
            f"the captured loss gives {float(value):.6g} where the script computed {float(loss.result):.6g}"
        )


def _loss_name(loss: LossCall) -> str:
    if isinstance(loss.fn, nn.Module):
        return f"{type(loss.fn).__name__}()"
    options = ", ".join(f"{k}={v!r}" for k, v in loss.kwargs.items() if not isinstance(v, torch.Tensor))
    return f"F.{loss.fn.__name__}({options})"
