"""Input sensitivity and batch independence, in eval mode so that BatchNorm and dropout do not mix samples."""

from __future__ import annotations

import torch

from torchmedic import signal_names as N
from torchmedic.batch import Batch, primary_output
from torchmedic.context import Context
from torchmedic.probes.registry import probe


def _eval_output(model: torch.nn.Module, batch: Batch) -> torch.Tensor | None:
    with torch.no_grad():
        out = primary_output(batch.run(model))
    return None if out is None else out.detach().float()


@probe("input_sensitivity", order=60, held_out_forwards=1)
def input_sensitivity(ctx: Context) -> None:
    """How much the output moves when the input changes: the mean output difference between different samples,
    relative to the output's magnitude (0: the output ignores the input)."""
    batch = ctx.held_out if ctx.held_out.size >= 2 else ctx.train[0]
    if batch.size < 2:
        return
    model = ctx.copy().eval()
    out = _eval_output(model, batch)
    if out is None or out.shape[0] != batch.size:
        return
    flat = torch.nan_to_num(out.reshape(out.shape[0], -1), nan=0.0, posinf=0.0, neginf=0.0)
    shifted = flat.roll(1, dims=0)
    scale = float(flat.abs().mean())
    change = float((flat - shifted).abs().mean())
    ctx.signals.emit(N.SENSITIVITY_OUTPUT_CHANGE, change)
    ctx.signals.emit(N.SENSITIVITY_RELATIVE, change / scale if scale > 0 else 0.0)


@probe("batch_independence", order=70, forwards=3)  # three, of at most 32 samples
def batch_independence(ctx: Context) -> None:
    """Change one sample and see whether the outputs of the others move: they must not in eval mode."""
    batch = ctx.held_out if ctx.held_out.size >= 3 else ctx.train[0]
    if batch.size < 3:
        return
    batch = batch.select(slice(0, min(batch.size, 32)))
    model = ctx.copy().eval()
    out = _eval_output(model, batch)
    if out is None or out.dim() == 0 or out.shape[0] != batch.size:
        ctx.signals.emit(N.BATCH_OUTPUT_ROWS, None if out is None or out.dim() == 0 else int(out.shape[0]))
        ctx.signals.emit(N.BATCH_INPUT_ROWS, batch.size)
        return
    inputs = batch.inputs if isinstance(batch.inputs, tuple) else (batch.inputs,)
    changed = []
    for t in inputs:
        t = t.clone()
        if t.is_floating_point():
            t[0] = t[-1].flip(0) if t.dim() > 1 else t[-1] + 1
        else:
            t[0] = t[-1]
        changed.append(t)
    other = _eval_output(model, batch.with_inputs(tuple(changed) if isinstance(batch.inputs, tuple) else changed[0]))
    if other is None:
        return
    rest, rest_other = out[1:], other[1:]
    finite = torch.isfinite(rest) & torch.isfinite(rest_other)
    if not bool(finite.any()):
        return
    scale = float(rest[finite].abs().mean()) + 1e-12
    moved = float((rest - rest_other)[finite].abs().max()) / scale
    ctx.signals.emit(N.BATCH_MIXING, max(moved, _reordered(model, batch, out)))


def _reordered(model: torch.nn.Module, batch: Batch, out: torch.Tensor) -> float:
    """Reverse the order of the samples: a model that treats each sample on its own returns its outputs reversed.
    Catches mixing that one changed sample barely shows (a view that strings samples into time steps)."""
    order = torch.arange(batch.size - 1, -1, -1, device=batch.first_input.device)
    flipped = _eval_output(model, batch.select(order))
    if flipped is None or flipped.shape != out.shape:
        return 0.0
    expected = out[order]
    finite = torch.isfinite(expected) & torch.isfinite(flipped)
    if not bool(finite.any()):
        return 0.0
    scale = float(expected[finite].abs().mean()) + 1e-12
    return float((flipped - expected)[finite].abs().max()) / scale
