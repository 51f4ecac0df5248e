"""Data audit over the batches read: per-channel input statistics, non-finite values, duplicates, variability,
the target histogram, and whether batches hold one class each."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

from torchmedic import signal_names as N
from torchmedic.batch import Batch, unpack
from torchmedic.context import Context
from torchmedic.probes.registry import probe
from torchmedic.samples import byte_rows
from torchmedic.stats import class_histogram, entropy, per_feature
from torchmedic.task import MAX_CLASSES

MAX_DISTINCT = 20  # distinct target values listed when there are at most this many (labels, mask values)


def _channel_moments(batches: list[Batch]) -> tuple[list[float], list[float], float, float, int]:
    """Per-channel mean and std over every sample and position (float64 sums of the finite values), the global
    min/max of the finite values, and how many values are not finite."""
    total = sq = count = shift = None
    low, high = math.inf, -math.inf
    bad = 0
    for b in batches:
        x = b.first_input.detach()
        if not x.is_floating_point() or x.numel() == 0:
            continue
        f = per_feature(x)  # (C, N * ...)
        finite = torch.isfinite(f)
        if not bool(finite.all()):
            bad += int((~finite).sum())
            f = torch.where(finite, f, torch.zeros_like(f))
        if shift is None:  # sums of values shifted by the first batch's means: exact enough in float32 squares
            shift = (f.sum(1, dtype=torch.float64) / finite.sum(1).clamp_min(1)).to(f.dtype)
        centred = torch.where(finite, f - shift[:, None], torch.zeros_like(f)) if bad else f - shift[:, None]
        sums = centred.sum(1, dtype=torch.float64)
        squares = (centred * centred).sum(1, dtype=torch.float64)
        kept = finite.sum(1, dtype=torch.float64)
        total = sums if total is None else total + sums
        sq = squares if sq is None else sq + squares
        count = kept if count is None else count + kept
        if bool(finite.any()):
            lo, hi = torch.aminmax(f[finite]) if bad else torch.aminmax(f)
            low, high = min(low, float(lo)), max(high, float(hi))
    if total is None or sq is None or count is None or shift is None:
        return [], [], math.nan, math.nan, bad
    count = count.clamp_min(1)
    offset = total / count
    std = (sq / count - offset * offset).clamp_min(0).sqrt()
    return (shift.double() + offset).tolist(), std.tolist(), low, high, bad


def _duplicates(batches: list[Batch]) -> tuple[float, float | None]:
    """The share of samples whose input bytes equal those of an earlier sample, and how well the inputs determine
    the labels: the share of samples whose label is the most common one among the samples with the same input
    (1.0 when each input has one label; None without one label per sample)."""
    labels: dict[bytes, Counter[bytes]] = {}
    total = 0
    for b in batches:
        rows = byte_rows(b.first_input)
        y = b.targets
        per_sample = y is not None and y.dim() > 0 and y.shape[0] == rows.shape[0]
        ys = byte_rows(y) if per_sample and y is not None else None
        for i, row in enumerate(rows):
            digest = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
            label = ys[i].tobytes() if ys is not None else b""
            labels.setdefault(digest, Counter())[label] += 1
            total += 1
    share = 1 - len(labels) / max(1, total)
    if any(b.targets is None for b in batches):
        return share, None
    return share, sum(max(c.values()) for c in labels.values()) / max(1, total)


def _variation(batches: list[Batch]) -> float:
    """Between-sample std of the inputs relative to their overall scale: ~0 when every sample is the same."""
    ratios = []
    for b in batches[:8]:
        x = b.first_input.detach().double()
        if x.dim() == 0 or x.shape[0] < 2 or not x.is_floating_point():
            continue
        flat = torch.nan_to_num(x.reshape(x.shape[0], -1), nan=0.0, posinf=0.0, neginf=0.0)
        scale = float(flat.abs().mean()) + float(flat.std())
        ratios.append(float(flat.std(dim=0).mean()) / scale if scale > 0 else 0.0)
    return sum(ratios) / len(ratios) if ratios else math.nan


def _dataset_targets(loader: Any, limit: int = 2048) -> torch.Tensor | None:
    """Labels of the whole dataset behind a DataLoader, independent of the loader's order: read from the dataset's
    `targets`/`labels`/`tensors` when it has them, else from random items."""
    dataset = getattr(loader, "dataset", None) if isinstance(loader, DataLoader) else None
    if dataset is None:
        return None
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is not None:
            try:
                return torch.as_tensor(values).flatten()
            except (TypeError, ValueError, RuntimeError):
                break
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) > 1:
        return tensors[1].flatten()
    try:
        size = len(dataset)
    except TypeError:
        return None
    if size == 0:
        return None
    generator = torch.Generator().manual_seed(0)
    index = torch.randperm(size, generator=generator)[:limit].tolist()
    try:
        labels = [unpack(dataset[i]).targets for i in index[: min(limit, 512)]]
    except Exception:
        return None
    if any(t is None for t in labels):
        return None
    return torch.stack([t.reshape(-1)[0] for t in labels if t is not None])


def _sampler(loader: Any) -> str:
    sampler = getattr(loader, "sampler", None) if isinstance(loader, DataLoader) else None
    if isinstance(sampler, SequentialSampler):
        return "sequential"
    if isinstance(sampler, RandomSampler):
        return "random"
    return type(sampler).__name__ if sampler is not None else "unknown"


def _is_label_like(t: torch.Tensor) -> bool:
    if t.numel() == 0:
        return False
    if t.is_floating_point():
        finite = t[torch.isfinite(t)]
        if finite.numel() == 0 or not bool((finite == finite.round()).all()):
            return False
        t = finite
    return bool((t >= 0).all()) and int(t.max()) < MAX_CLASSES


@probe("data_audit", order=10)
def data_audit(ctx: Context) -> None:
    s, batches = ctx.signals, ctx.audit
    s.emit(N.DATA_BATCHES_READ, len(batches))
    s.emit(N.DATA_SAMPLES_READ, sum(b.size for b in batches))
    s.emit(N.DATA_BATCH_SIZE, batches[0].size)
    s.emit(N.DATA_SAMPLER, _sampler(ctx.loader))
    x0 = batches[0].first_input
    s.emit(N.INPUT_DTYPE, str(x0.dtype).replace("torch.", ""))
    s.emit(N.INPUT_SHAPE, list(x0.shape))
    mean, std, low, high, inputs_bad = _channel_moments(batches)
    if mean:
        s.emit(N.INPUT_CHANNEL_MEAN, mean)
        s.emit(N.INPUT_CHANNEL_STD, std)
        s.emit(N.INPUT_RMS, (sum(m * m + d * d for m, d in zip(mean, std, strict=True)) / len(mean)) ** 0.5)
        s.emit(N.INPUT_MIN, low)
        s.emit(N.INPUT_MAX, high)
    s.emit(N.INPUT_NONFINITE, inputs_bad)
    if inputs_bad:
        ctx.untrainable = "the inputs hold NaN/Inf: every training step would be NaN"
    share, purity = _duplicates(batches)
    s.emit(N.INPUT_DUPLICATE_SHARE, share)
    if purity is not None:
        s.emit(N.INPUT_LABEL_PURITY, purity)
    s.emit(N.INPUT_VARIATION, _variation(batches))
    targets = [b.targets for b in batches if b.targets is not None]
    if not targets:
        return
    t = torch.cat([x.detach().flatten().cpu() for x in targets])
    s.emit(N.TARGET_DTYPE, str(targets[0].dtype).replace("torch.", ""))
    s.emit(N.TARGET_SHAPE, list(targets[0].shape))
    targets_bad = int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0
    s.emit(N.TARGET_NONFINITE, targets_bad)
    if targets_bad:
        ctx.untrainable = "the targets hold NaN/Inf: every training step would be NaN"
    finite = t[torch.isfinite(t)] if t.is_floating_point() else t
    if finite.numel():
        s.emit(N.TARGET_MIN, float(finite.min()))
        s.emit(N.TARGET_MAX, float(finite.max()))
        s.emit(N.TARGET_MEAN, float(finite.double().mean()))
        s.emit(N.TARGET_STD, float(finite.double().std()) if finite.numel() > 1 else 0.0)
    values = torch.unique(finite)
    if values.numel() <= MAX_DISTINCT:
        s.emit(N.TARGET_VALUES, [float(x) for x in values])
    if ctx.task.kind == "multilabel":
        _label_shares(s, targets)
        return
    if not _is_label_like(finite):
        return
    classes = max(int(finite.max()) + 1, int(ctx.task.num_classes or 0))
    hist = class_histogram(finite, classes)
    s.emit(N.TARGET_HISTOGRAM, hist.tolist())
    s.emit(N.TARGET_CLASSES_PRESENT, int((hist > 0).sum()))
    s.emit(N.TARGET_MAJORITY_SHARE, float(hist.max()) / max(1, int(hist.sum())))
    s.emit(N.TARGET_ENTROPY, entropy(hist))
    per_batch = [entropy(class_histogram(x.flatten(), classes)) for x in targets if x.numel() > 1]
    if per_batch:
        s.emit(N.TARGET_BATCH_ENTROPY, sum(per_batch) / len(per_batch))
    whole = _dataset_targets(ctx.loader)
    if whole is not None and _is_label_like(whole):
        hist = class_histogram(whole, max(classes, int(whole.max()) + 1))
        s.emit(N.DATASET_HISTOGRAM, hist.tolist())
        s.emit(N.DATASET_ENTROPY, entropy(hist))
        s.emit(N.DATASET_MAJORITY_SHARE, float(hist.max()) / max(1, int(hist.sum())))
        s.emit(N.DATASET_CLASSES_PRESENT, int((hist > 0).sum()))
    sizes = [x.numel() for x in targets if x.numel() > 1]
    if sizes:
        s.emit(N.TARGET_SHUFFLED_BATCH_ENTROPY, expected_batch_entropy(hist, sizes[0]))


def _label_shares(s: Any, targets: list[torch.Tensor]) -> None:
    """Per-label share of positives of multi-label 0/1 targets: rare positives make all-zero predictions a trap."""
    try:
        y = torch.cat([t.detach().reshape(t.shape[0], -1).float().cpu() for t in targets])
    except RuntimeError:
        return
    shares = (y > 0.5).float().mean(0)
    s.emit(N.TARGET_POSITIVE_SHARE, shares.tolist())


def expected_batch_entropy(hist: torch.Tensor, batch_size: int, draws: int = 64) -> float:
    """The mean label entropy of a batch of `batch_size` samples drawn at random from the class histogram: what a
    shuffled loader gives (smaller than the dataset's entropy for small batches)."""
    generator = torch.Generator().manual_seed(0)
    p = hist.double() / hist.sum().clamp_min(1)
    labels = torch.multinomial(p, batch_size * draws, replacement=True, generator=generator).reshape(draws, -1)
    return sum(entropy(torch.bincount(row, minlength=len(hist))) for row in labels) / draws
