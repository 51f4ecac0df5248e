"""Turn an exception from inside the user's forward or backward into an error that names the layer, the shapes or
the line."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchmedic.batch import Batch
from torchmedic.errors import ModelError
from torchmedic.metrics import loss_value

_LIBRARIES = (str(Path(torch.__file__).parent), str(Path(__file__).parent))
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n\s+(?P<code>[^\n]*)')


class _Found(Exception):
    """Raised from a hook to stop the forward once the layer of interest has been reached."""

    def __init__(self, shape: torch.Size) -> None:
        self.shape = shape


def _shape_of(args: Any) -> torch.Size | None:
    first = args[0] if isinstance(args, tuple) and args else args
    return first.shape if isinstance(first, torch.Tensor) else None


def failing_module(model: nn.Module, batch: Batch) -> tuple[str, nn.Module, torch.Size | None, BaseException] | None:
    """Re-run the forward that raised and return (name, module, input shape, exception) of the innermost module
    that was running when it raised."""
    stack: list[tuple[str, nn.Module, torch.Size | None]] = []

    def enter(name: str, module: nn.Module, args: Any) -> None:
        stack.append((name, module, _shape_of(args)))

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        if stack:
            stack.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name: enter(n, m, a)))
        handles.append(module.register_forward_hook(leave))
    try:
        with torch.no_grad():
            batch.run(model)
    except Exception as exc:
        if stack:
            name, module, shape = stack[-1]
            return name, module, shape, exc
        return None
    finally:
        for h in handles:
            h.remove()
    return None


def _features_reaching(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Size | None:
    """The shape of `module`'s input when the model runs on `x` (the forward is stopped there)."""

    def stop(m: nn.Module, args: Any) -> None:
        shape = _shape_of(args)
        if shape is not None:
            raise _Found(shape)

    handle = module.register_forward_pre_hook(stop)
    try:
        with torch.no_grad():
            model(x)
    except _Found as found:
        return found.shape
    except Exception:
        return None
    finally:
        handle.remove()
    return None


def fitting_sizes(model: nn.Module, module: nn.Linear, x: torch.Tensor) -> list[int]:
    """The square image sizes for which `module` receives its `in_features` (several when pooling rounds down)."""
    if x.dim() != 4:
        return []
    sample = x[:1]
    found = []
    for size in range(1, max(2 * x.shape[-1], 64) + 1):
        resized = torch.nn.functional.interpolate(sample.float(), size=(size, size)).to(sample.dtype)
        shape = _features_reaching(model, module, resized)
        if shape is not None and shape[-1] == module.in_features:
            found.append(size)
        elif found:
            break
    return found


def explain(model: nn.Module, batch: Batch, exc: BaseException) -> ModelError:
    """A ModelError naming the layer, what it expected, what it got and, for a flatten/Linear mismatch, the input
    size that would fit."""
    found = failing_module(model, batch)
    x = batch.first_input
    if found is None:
        return ModelError(f"the model raised on an input of shape {tuple(x.shape)}: {type(exc).__name__}: {exc}")
    name, module, shape, inner = found
    where = f"layer {name!r} ({type(module).__name__})" if name else f"the model ({type(module).__name__})"
    got = f"an input of shape {tuple(shape)}" if shape is not None else "its input"
    if isinstance(module, nn.Linear) and shape is not None and shape[-1] != module.in_features:
        message = (
            f"{where} expects {module.in_features} input features but got {shape[-1]} "
            f"({got}) when the model input has shape {tuple(x.shape)}."
        )
        fit = fitting_sizes(model, module, x)
        if fit:
            sizes = f"{fit[0]}x{fit[0]}" + (f" to {fit[-1]}x{fit[-1]}" if len(fit) > 1 else "")
            message += (
                f" Inputs of {sizes} would give {module.in_features} features: the layer was sized for "
                f"{fit[0]}x{fit[0]} images. Set in_features={shape[-1]} for {x.shape[-2]}x{x.shape[-1]} inputs, "
                "or use nn.LazyLinear / a global pooling layer."
            )
        else:
            message += f" Set in_features={shape[-1]}, or reshape the input."
        return ModelError(message)
    if (
        isinstance(module, nn.modules.conv._ConvNd)
        and shape is not None
        and len(shape) > 1
        and shape[1] != module.in_channels
    ):
        if len(shape) == 4 and shape[-1] == module.in_channels:
            return ModelError(
                f"{where} expects {module.in_channels} input channels in dimension 1 but got {got}: images laid out "
                "(N, H, W, C), channels last, as numpy, PIL and OpenCV give them. Convert them with "
                "x.permute(0, 3, 1, 2) (torchvision's v2.ToImage() does this), and uint8 pixels with .float() / 255."
            )
        return ModelError(
            f"{where} expects {module.in_channels} input channels but got {shape[1]} ({got}). "
            f"Set in_channels={shape[1]} or convert the images (e.g. grayscale vs RGB)."
        )
    weight = next(module.parameters(recurse=False), None)
    if weight is not None and x.dtype != weight.dtype and (x.is_floating_point() or x.dtype == torch.uint8):
        scale = " (uint8 pixels: x.float() / 255)" if x.dtype == torch.uint8 else ""
        return ModelError(
            f"{where} holds {weight.dtype} weights but the model input is {x.dtype}{scale}: cast the input to the "
            f"model's dtype (x.to({weight.dtype})), or the model to the input's (model.to({x.dtype})). "
            f"torch said: {inner}"
        )
    return ModelError(f"{where} raised on {got}: {type(inner).__name__}: {inner}")


def check_backward(model: nn.Module, batch: Batch, loss_fn: Callable[..., Any]) -> None:
    """Raise a ModelError when `loss.backward()` fails on the model's graph (an in-place change to a tensor autograd
    saved, most often): every trial would fail the same way, so the user learns it before any experiment."""
    try:
        loss = loss_value(loss_fn, batch.run(model), batch.loss_targets)
    except Exception:
        return  # a forward or loss that raises is reported where it is measured
    if not loss.requires_grad:
        return  # a cut graph is a finding, not an error
    try:
        loss.backward()
    except RuntimeError as exc:
        raise _backward_error(model, batch, loss_fn, exc) from exc
    finally:
        model.zero_grad(set_to_none=True)


def _backward_error(model: nn.Module, batch: Batch, loss_fn: Callable[..., Any], exc: RuntimeError) -> ModelError:
    """The error, with the line of the user's forward whose saved result was changed (found by anomaly mode)."""
    text = str(exc).split(" Hint:")[0]
    line = _forward_line(model, batch, loss_fn)
    where = f" The tensor autograd needs is the result of {line}." if line else ""
    if "modified by an inplace operation" not in text:
        return ModelError(f"loss.backward() failed on the model's graph: {text}.{where}")
    return ModelError(
        "loss.backward() fails: an in-place operation in the model's forward (x += ..., x.mul_(...), "
        f"x[...] = ..., nn.ReLU(inplace=True)) changes a tensor that autograd saved for the gradient.{where} "
        "Write the change out of place (h = h + 1 instead of h += 1, inplace=False). "
        f"torch said: {text}"
    )


def _forward_line(model: nn.Module, batch: Batch, loss_fn: Callable[..., Any]) -> str | None:
    """'file:line (code)' of the last frame of the user's code in the forward whose backward failed, or None."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autograd.detect_anomaly(check_nan=False):
                loss_value(loss_fn, batch.run(model), batch.loss_targets).backward()
        except RuntimeError:
            pass
        finally:
            model.zero_grad(set_to_none=True)
    for warning in caught:
        frames = [f for f in _FRAME.finditer(str(warning.message)) if not f["file"].startswith(_LIBRARIES)]
        if "Traceback of forward call" in str(warning.message) and frames:
            last = frames[-1]
            return f"{last['code'].strip()!r} ({Path(last['file']).name}:{last['line']}, in {last['func']})"
    return None
