"""The one measurement layer: tensor statistics of activations, gradients, updates, outputs and inputs, shared by
the pre-flight trial and probes and by the training monitor's probes.

Each statistic is computed once, as a tensor on the input's device (the monitor reads many with one sync); the
float versions the pre-flight probes use are those tensors read out.
"""

from __future__ import annotations

import math

import torch


def entropy(counts: torch.Tensor) -> float:
    """Shannon entropy in nats of a histogram (counts need not be normalized); 0 for an empty one."""
    counts = counts.double().flatten()
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * p.log()).sum())


def class_histogram(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """How many samples carry each class index, for integer labels in [0, num_classes)."""
    labels = labels.detach().flatten().long().cpu()
    labels = labels[(labels >= 0) & (labels < num_classes)]
    return torch.bincount(labels, minlength=num_classes)


def per_feature(x: torch.Tensor) -> torch.Tensor:
    """Reshape (N, C, ...) to (C, N * ...) so that statistics run per channel (per column for (N, F))."""
    x = x.detach()
    if x.dim() <= 1:
        return x.reshape(1, -1)
    return x.transpose(0, 1).reshape(x.shape[1], -1)


SATURATION_MARGIN = 0.01  # within 1% of the range from a bound, tanh/sigmoid pass < ~4% of their peak gradient


def dead_fraction(x: torch.Tensor) -> float:
    """Fraction of features (channels, or columns) that are exactly zero for every sample and position."""
    return float(dead_fraction_tensor(x)) if x.numel() else 0.0


def between_sample_std(x: torch.Tensor) -> float:
    """How much the value at each position varies across the batch, averaged over positions (0 if N < 2)."""
    return float(spread_tensor(x)[2])


def saturated_fraction_tensor(y: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Share of a squashing activation's outputs pinned within SATURATION_MARGIN of its bounds."""
    margin = SATURATION_MARGIN * (high - low)
    y = y.detach().float()
    return ((y <= low + margin) | (y >= high - margin)).float().mean()


def grad_norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of each gradient, as one tensor (one device sync for all of them)."""
    norms = torch._foreach_norm([g.detach() for g in grads])
    return torch.stack([n.to(norms[0].device) for n in norms])


def update_norms(before: list[torch.Tensor], after: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(|after - before|, |before|) per tensor: how far an optimizer step moved each parameter, and its size."""
    moved = torch._foreach_norm(torch._foreach_sub([a.detach() for a in after], before))
    sizes = torch._foreach_norm(before)
    return torch.stack([m.to(moved[0].device) for m in moved]), torch.stack([z.to(moved[0].device) for z in sizes])


def update_ratio(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    """How far one optimizer step moved a layer, relative to its size: |W_after - W_before| / |W_before| over all
    of its parameters together (healthy training sits near 1e-3); inf when a zero layer moved."""
    moved, sizes = update_norms(before, after)
    num, den = float(moved.float().norm()), float(sizes.float().norm())
    return num / den if den > 0 else (math.inf if num > 0 else 0.0)


def finite_fraction(x: torch.Tensor) -> float:
    if not x.is_floating_point() or x.numel() == 0:
        return 1.0
    return float(torch.isfinite(x).float().mean())


def log_ratio(a: float, b: float) -> float:
    """log10(a / b) for positive numbers; +-inf at the edges, nan when undefined."""
    if a > 0 and b > 0:
        return math.log10(a / b)
    if a > 0:
        return math.inf
    if b > 0:
        return -math.inf
    return math.nan


# Device-side variants for the training monitor: the same statistics as tensors, so that many of them can be read
# with one device sync instead of one `.item()` each.


def without_history(x: torch.Tensor) -> torch.Tensor:
    """`x` without autograd history; detached only when it has some (each op costs the monitor a few µs)."""
    return x.detach() if x.requires_grad else x


def std_mean_tensor(x: torch.Tensor, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(std, mean) like `torch.std_mean`, in two plain passes: several times faster on CPU than its Welford
    reduction, and exact enough for monitoring (the mean is removed before squaring)."""
    x = without_history(x).float()
    n = x.numel() if dim is None else x.shape[dim]
    mean = x.mean() if dim is None else x.mean(dim=dim, keepdim=True)
    var = (x - mean).square().sum() if dim is None else (x - mean).square().sum(dim=dim)
    std = (var / max(n - 1, 1)).sqrt()
    return std, mean if dim is None else mean.squeeze(dim)


def spread_tensor(x: torch.Tensor) -> torch.Tensor:
    """[mean, std, between-sample std] of a (N, ...) batch as one 1-d tensor on its device. One pass for the
    per-position moments, from which the overall std follows by the law of total variance: about half the cost
    of computing the std and the between-sample std apart, which matters on every sampled step of the monitor."""
    x = without_history(x).float()
    x = x.reshape(x.shape[0] if x.dim() else 1, -1)
    n, positions = x.shape
    position_mean = x.mean(dim=0)
    squares = (x - position_mean).square_().sum(dim=0)  # squared deviations from each position's mean
    mean = position_mean.mean()
    total = squares.sum() + n * (position_mean - mean).square_().sum()
    between = (squares / (n - 1)).sqrt().mean() if n > 1 else x.new_zeros(())
    return torch.stack([mean, (total / max(n * positions - 1, 1)).sqrt(), between])


def dead_fraction_tensor(x: torch.Tensor) -> torch.Tensor:
    """`dead_fraction` as a 0-d tensor on the input's device."""
    x = without_history(x)
    if x.dim() <= 1:
        return (x == 0).all().float()
    nonzero = x != 0  # (N, C, ...)
    alive = nonzero.any(dim=0) if x.dim() == 2 else nonzero.flatten(2).any(dim=2).any(dim=0)  # (C,)
    return 1.0 - alive.float().mean()


def class_histogram_tensor(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """`class_histogram` without leaving the device (float counts; labels outside [0, num_classes) are dropped)."""
    labels = without_history(labels).flatten().long()
    valid = ((labels >= 0) & (labels < num_classes)).float()
    counts = torch.zeros(num_classes, device=labels.device)
    return counts.index_add_(0, labels.clamp(0, num_classes - 1), valid)
