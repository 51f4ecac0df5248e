"""What the output looks like at init: spread across the batch, range, predicted classes, softmax signatures."""

from __future__ import annotations

import torch

from torchmedic.context import Context
from torchmedic.metrics import predictions
from torchmedic.probes.registry import probe
from torchmedic.stats import between_sample_std, class_histogram, entropy


@probe("outputs", order=50)
def outputs(ctx: Context) -> None:
    s, out = ctx.signals, ctx.output.detach().float()
    s.emit("output.between_std", between_sample_std(out))
    s.emit("output.abs_mean", float(out.abs().mean()))
    s.emit("output.min", float(out.min()) if out.numel() else 0.0)
    s.emit("output.max", float(out.max()) if out.numel() else 0.0)
    s.emit("output.zero_share", float((out == 0).float().mean()))
    s.emit("output.nonfinite", int((~torch.isfinite(out)).sum()))
    if out.dim() >= 2 and out.shape[1] >= 1:
        rows = out.transpose(0, 1).reshape(out.shape[1], -1)  # (C, N*...)
        sums = rows.sum(0)
        s.emit("output.row_sum_mean", float(sums.mean()))
        s.emit("output.rows_sum_to_one", bool(((sums - 1).abs() < 1e-3).all() and (out >= 0).all()))
        s.emit("output.rows_log_normalized", bool((out <= 1e-6).all() and ((rows.exp().sum(0) - 1).abs() < 1e-3).all()))
    if ctx.task.is_classification and ctx.task.kind != "multilabel":
        pred = predictions(out, ctx.task).flatten()
        hist = class_histogram(pred, max(int(ctx.task.num_classes or 2), int(pred.max()) + 1))
        s.emit("pred.histogram", hist.tolist())
        s.emit("pred.entropy", entropy(hist))
        s.emit("pred.top_share", float(hist.max()) / max(1, pred.numel()))
