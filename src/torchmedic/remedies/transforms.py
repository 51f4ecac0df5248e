"""A torchvision v2 input pipeline that normalizes with measured statistics (the cure for `data.unnormalized`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from torchmedic.errors import InputError
from torchmedic.remedies.data_stats import DatasetStats
from torchmedic.remedies.optional import require

CROP_PADDING = 4  # pixels of zero padding before the random crop, as in the usual CIFAR-10 recipe


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and std of pixels on the [0, 1] scale, as Normalize takes them."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""


CIFAR10_STATS = ChannelStats((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "CIFAR-10 training set, per pixel")
"""CIFAR-10's per-channel pixel mean and std over the 50,000 training images, on the [0, 1] scale.

The often-copied std (0.2023, 0.1994, 0.2010) is not the per-pixel std: it is the average of each image's own std,
which leaves out how much images differ from one another, so inputs normalized with it have a std near 1.22.
"""


def channel_stats(stats: DatasetStats | ChannelStats) -> ChannelStats:
    """Stats on the [0, 1] scale: measured on raw 8-bit data (max above 1) they are divided by 255."""
    if isinstance(stats, ChannelStats):
        return stats
    scale = stats.pixel_scale
    if max(stats.max) > 255:
        raise InputError(
            f"the measured inputs reach {max(stats.max):.4g}: not 0-1 or 0-255 pixels, so the scale of the images "
            "the pipeline will receive is unknown. Pass ChannelStats(mean, std) on the [0, 1] scale instead."
        )
    source = f"measured on {stats.count} samples" + (", rescaled from 0-255" if scale > 1 else "")
    return ChannelStats(tuple(m / scale for m in stats.mean), tuple(s / scale for s in stats.std), source)


def transforms_for(
    stats: DatasetStats | ChannelStats,
    image_size: int | tuple[int, int],
    augment: bool = True,
    *,
    padding: int = CROP_PADDING,
    flip: bool = True,
) -> Any:
    """A torchvision v2 pipeline for PIL images or uint8 arrays/tensors: resize, (augment,) scale to [0, 1], normalize.

    With `augment`, a random crop with `padding` pixels of zero padding and, with `flip`, a random horizontal flip
    (the CIFAR-10 recipe; turn the flip off where a mirrored image is another class, as for digits); without, a
    center crop, so training and evaluation see the same scale. Needs `pip install torchmedic[vision]`.
    """
    v2 = require("torchvision.transforms.v2", "vision", purpose="transforms_for")
    normal = channel_stats(stats)
    flat = [i for i, s in enumerate(normal.std) if not s > 0]
    if flat:
        raise InputError(
            f"channels {flat} have std {[normal.std[i] for i in flat]}: every pixel of them has the same value, "
            "and normalizing would divide by zero. Check the data (see cause data.low_variability)."
        )
    size = image_size if isinstance(image_size, int) else tuple(image_size)
    steps = [v2.ToImage(), v2.Resize(size, antialias=True)]
    if augment:
        steps += [v2.RandomCrop(size, padding=padding)] + ([v2.RandomHorizontalFlip()] if flip else [])
    else:
        steps += [v2.CenterCrop(size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(normal.mean), list(normal.std))]
    return v2.Compose(steps)
