"""The recipe's parts, built from its config: device, loaders with the measured Normalize, optimizer, LR, schedule."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from torchmedic.errors import InputError
from torchmedic.recipe.config import FALLBACK_LR, SGD_MOMENTUM, WEIGHT_DECAY, TrainConfig
from torchmedic.recipe.datasets import ImageData, Transformed
from torchmedic.remedies.lr_finder import find_lr
from torchmedic.remedies.transforms import CROP_PADDING, transforms_for

log = logging.getLogger("torchmedic.recipe")

PADDING_FRACTION = CROP_PADDING / 32  # the CIFAR-10 recipe pads 32x32 images by 4 pixels: an eighth of the side
TEST_BATCH = 512  # evaluation holds no graph, so it takes larger batches


def device_for(name: str) -> torch.device:
    """The device named by --device: "auto" picks CUDA when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda, but torch sees no CUDA device here: use --device cpu (or auto).")
    return torch.device(name)


def loaders(data: ImageData, config: TrainConfig, generator: torch.Generator,
            device: torch.device) -> tuple[DataLoader, DataLoader]:  # fmt: skip
    """Training batches augmented (random crop with padding, a flip where the data allows it) and shuffled from
    `generator`; test batches only resized and normalized. Both normalize with the training images' statistics."""
    padding = max(1, round(data.image_size * PADDING_FRACTION))
    train_tf = transforms_for(data.stats, data.image_size, augment=True, padding=padding, flip=data.flip)
    test_tf = transforms_for(data.stats, data.image_size, augment=False)
    workers, pin, persistent = config.workers, device.type == "cuda", config.workers > 0
    train = DataLoader(
        Transformed(data.train, train_tf),
        batch_size=config.batch_size,
        shuffle=True,
        generator=generator,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=persistent,
    )
    test = DataLoader(
        Transformed(data.test, test_tf),
        batch_size=TEST_BATCH,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=persistent,
    )
    return train, test


def optimizer_for(config: TrainConfig, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW with decoupled weight decay 0.01, Adam, or SGD with Nesterov momentum 0.9 and weight decay 5e-4."""
    decay = WEIGHT_DECAY[config.optimizer]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=SGD_MOMENTUM, nesterov=True, weight_decay=decay)


def learning_rate(config: TrainConfig, model: nn.Module, loader: DataLoader, loss_fn: nn.Module) -> tuple[float, str]:
    """The LR to train at and where it came from: the user's, the range test's suggestion, or the optimizer's usual
    default when the range test finds none."""
    if config.lr is not None:
        return config.lr, "given"
    fallback = FALLBACK_LR[config.optimizer]
    result = find_lr(model, loader, loss_fn, optimizer_for(config, model, fallback))
    if result.suggestion is None:
        log.warning("the LR range test found no LR that trains (%s); using %g", result.message, fallback)
        return fallback, "fallback"
    return result.suggestion, "find_lr"


def scheduler_for(config: TrainConfig, optimizer: torch.optim.Optimizer, lr: float, total_steps: int) -> Any:
    """Stepped once per batch: one-cycle peaks at `lr`; cosine starts there and decays to 0."""
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return None


def steps(loader: DataLoader, epochs: int) -> int:
    """Optimizer steps in `epochs` passes over the loader."""
    return max(1, epochs * len(loader))
