"""What the output looks like at init: spread across the batch, range, predicted classes, softmax signatures."""

from __future__ import annotations

import torch

from torchmedic import signal_names as N
from torchmedic.context import Context
from torchmedic.metrics import predictions
from torchmedic.probes.registry import probe
from torchmedic.stats import between_sample_std, class_histogram, entropy


@probe("outputs", order=50)
def outputs(ctx: Context) -> None:
    s, out = ctx.signals, ctx.output.detach().float()
    s.emit(N.OUTPUT_BETWEEN_STD, between_sample_std(out))
    s.emit(N.OUTPUT_ABS_MEAN, float(out.abs().mean()))
    s.emit(N.OUTPUT_MIN, float(out.min()) if out.numel() else 0.0)
    s.emit(N.OUTPUT_MAX, float(out.max()) if out.numel() else 0.0)
    s.emit(N.OUTPUT_ZERO_SHARE, float((out == 0).float().mean()))
    s.emit(N.OUTPUT_NONFINITE, int((~torch.isfinite(out)).sum()))
    if out.dim() >= 2 and out.shape[1] >= 1:
        rows = out.transpose(0, 1).reshape(out.shape[1], -1)  # (C, N*...)
        sums = rows.sum(0)
        s.emit(N.OUTPUT_ROW_SUM_MEAN, float(sums.mean()))
        s.emit(N.OUTPUT_ROWS_SUM_TO_ONE, bool(((sums - 1).abs() < 1e-3).all() and (out >= 0).all()))
        s.emit(N.OUTPUT_ROWS_LOG_NORMALIZED, bool((out <= 1e-6).all() and ((rows.exp().sum(0) - 1).abs() < 1e-3).all()))
    if ctx.task.is_classification and ctx.task.kind != "multilabel":
        pred = predictions(out, ctx.task).flatten()
        hist = class_histogram(pred, max(int(ctx.task.num_classes or 2), int(pred.max()) + 1))
        s.emit(N.PRED_HISTOGRAM, hist.tolist())
        s.emit(N.PRED_ENTROPY, entropy(hist))
        s.emit(N.PRED_TOP_SHARE, float(hist.max()) / max(1, pred.numel()))
