"""Pick a learning rate from an LR range test curve (loss vs exponentially growing LR), robustly to noisy losses."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from torchmedic.errors import InputError

FLAT_MESSAGE = "no learning rate makes the loss fall: see the diagnosis"
METHOD = (
    "geometric mean of two LRs read from the smoothed loss (running median, then a Gaussian-kernel local linear fit "
    "in log10(lr)): the steepest descent, i.e. the most negative d loss / d log10(lr) on the descent into the "
    "minimum, and the LR at the minimum divided by 3"
)


@dataclass(frozen=True)
class SuggestConfig:
    """How a range-test curve is smoothed and read; every threshold with its reason."""

    median_window: int = 5  # points; a running median first removes single-batch spikes
    bandwidth_decades: float = 0.25  # Gaussian kernel sigma in log10(lr): ~3 points at 100 points over 8 decades
    min_points: int = 8  # fewer finite losses than this cannot show a descent and a minimum
    window_decades: float = 0.5  # the start level and the level at the minimum are medians over 0.5 decade of LR
    min_fall_z: float = 4.0  # the fall must be 4 standard errors: the lowest of ~15 noise windows is ~2 below by chance
    min_fall_fraction: float = 0.02  # and 2% of the start level: batch-to-batch wander is not learning
    descent_start: float = 0.9  # the descent starts where the loss was last above min + 90% of its total drop
    minimum_divisor: float = 3.0  # the loss minimum sits just below divergence (~2 / curvature); a third is stable
    agreement_decades: float = 1.0  # healthy curves put the two rules up to ~1 decade apart; each decade more costs 1/e


@dataclass(frozen=True)
class LRSuggestion:
    """The suggested LR (None when no LR makes the loss fall), how it was found and how much to trust it."""

    suggestion: float | None
    method: str
    confidence: float  # in [0, 1]
    flat: bool
    smoothed: tuple[float, ...]  # the smoothed loss at each LR (nan past the first non-finite loss)
    slopes: tuple[float, ...]  # d smoothed loss / d log10(lr)
    candidates: tuple[tuple[str, float], ...]  # each rule's LR, the evidence behind `confidence`
    message: str


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median over a centred window (shrunk at the ends), robust to isolated spikes."""
    half = max(window // 2, 0)
    return np.array([np.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))])


def local_linear(x: np.ndarray, y: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel-weighted local linear fit: the smoothed value and its slope dy/dx at every x (Gaussian kernel)."""
    diff = x[None, :] - x[:, None]  # (point, neighbour)
    w = np.exp(-0.5 * (diff / bandwidth) ** 2)
    sw, swx, swy = w.sum(1), (w * diff).sum(1), (w * y[None, :]).sum(1)
    swxx, swxy = (w * diff**2).sum(1), (w * diff * y[None, :]).sum(1)
    det = sw * swxx - swx**2
    slope = np.where(det > 0, (sw * swxy - swx * swy) / np.where(det > 0, det, 1), 0.0)
    value = (swy - slope * swx) / sw
    return value, slope


def _fall(
    x: np.ndarray, loss: np.ndarray, smoothed: np.ndarray, lowest: int, config: SuggestConfig
) -> tuple[float, float]:
    """How far the loss falls from its start to its minimum (medians of raw losses), and how far it must to count."""
    half = config.window_decades / 2
    first = loss[x <= x[0] + config.window_decades]
    bottom = loss[np.abs(x - x[lowest]) <= half]
    start_level, low_level = float(np.median(first)), float(np.median(bottom))
    noise = 1.4826 * float(np.median(np.abs(loss - smoothed)))  # per-point noise: MAD of the residuals
    standard_error = noise * math.sqrt(math.pi / 2) * math.sqrt(1 / len(first) + 1 / len(bottom))  # of 2 medians
    needed = max(config.min_fall_z * standard_error, config.min_fall_fraction * abs(start_level))
    return start_level - low_level, needed


def suggest_lr(lrs: ArrayLike, losses: ArrayLike, config: SuggestConfig | None = None) -> LRSuggestion:
    """Suggest a learning rate from a range test, or None with `flat=True` when no LR makes the loss fall.

    The curve is read up to its first non-finite loss. The derivative is d(smoothed loss) / d log10(lr), per decade.
    """
    config = config or SuggestConfig()
    lr = np.asarray(lrs, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    if lr.shape != loss.shape or lr.ndim != 1:
        raise InputError(f"lrs and losses must be 1-D and of equal length; got shapes {lr.shape} and {loss.shape}.")
    finite = np.isfinite(loss) & np.isfinite(lr) & (lr > 0)
    n = len(loss) if finite.all() else int(np.argmin(finite))
    smoothed, slopes = np.full(len(loss), np.nan), np.full(len(loss), np.nan)
    if n < config.min_points:
        text = f"only {n} finite losses before the curve ended: run more iterations or a lower start_lr"
        return LRSuggestion(None, METHOD, 0.0, False, tuple(smoothed), tuple(slopes), (), text)
    x = np.log10(lr[:n])
    spacing = abs(float(np.median(np.diff(x))))
    bandwidth = max(config.bandwidth_decades, 1.5 * spacing)
    smoothed[:n], slopes[:n] = local_linear(x, running_median(loss[:n], config.median_window), bandwidth)
    s, g = smoothed[:n], slopes[:n]

    lowest = int(np.argmin(s))
    fall, needed = _fall(x, loss[:n], s, lowest, config)
    if fall <= needed or lowest == 0:
        text = f"{FLAT_MESSAGE} (the loss falls by {max(fall, 0.0):.3g} at most; {needed:.3g} would count)"
        if lowest == 0 and s[-1] > s[0]:
            text += "; it rises from the first steps on: try a lower start_lr"
        return LRSuggestion(None, METHOD, 0.0, True, tuple(smoothed), tuple(slopes), (), text)

    start_level = float(np.max(s[: lowest + 1]))
    drop = start_level - float(s[lowest])
    above = np.nonzero(s[:lowest] >= s[lowest] + config.descent_start * drop)[0]
    start = int(above[-1]) if len(above) else 0
    steep = start + int(np.argmin(g[start : lowest + 1]))
    candidates = (("steepest", float(lr[steep])), (f"minimum/{config.minimum_divisor:g}",
                                                   float(lr[lowest]) / config.minimum_divisor))  # fmt: skip
    logs = [math.log10(v) for _, v in candidates]
    suggestion = float(10 ** (sum(logs) / len(logs)))
    agreement = math.exp(-max(0.0, max(logs) - min(logs) - config.agreement_decades))
    signal = fall / (fall + needed)
    edge = 0.5 if lowest == n - 1 else 1.0  # lowest at the last LR tried: the loss may fall further beyond it
    confidence = float(np.clip(agreement * signal * edge, 0.0, 1.0))
    text = (
        f"suggested lr {suggestion:.3g}: the smoothed loss falls fastest at lr {lr[steep]:.3g} "
        f"({g[steep]:.3g} per decade) and is lowest at lr {lr[lowest]:.3g} ({s[lowest]:.4g}, from {start_level:.4g})"
    )
    if edge < 1:
        text += "; still falling at the last LR tried: raise end_lr to see the minimum"
    return LRSuggestion(suggestion, METHOD, confidence, False, tuple(smoothed), tuple(slopes), candidates, text)
