"""Bugs and healthy setups on a slow-starting CNN (global average pooling): written after the first bench, to check
that diagnoses hold on a model whose healthy training also shows little in a few dozen steps."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import digits, digits32, eval_loader, loader, normalize_images, standardize
from bench.models import PooledCNN


def _images(model: nn.Module, optimizer: torch.optim.Optimizer) -> Setup:
    return on_split(normalize_images(digits32()), model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("lr.too_high", steps=300)
def lr_high_adamw_pooled() -> Setup:
    """AdamW with lr=0.05 on a pooled CNN: the deeper ReLUs die within the first steps and the output is the bias."""
    model = PooledCNN()
    return _images(model, torch.optim.AdamW(model.parameters(), lr=0.05))


@case("lr.too_low", steps=300)
def lr_low_rmsprop_pooled() -> Setup:
    """RMSprop with lr=1e-7 (a typo for 1e-3?): steps move the weights by a millionth of their norm."""
    model = PooledCNN()
    return _images(model, torch.optim.RMSprop(model.parameters(), lr=1e-7))


@case("init.too_large", steps=300)
def init_uniform_pooled() -> Setup:
    """Weights drawn with nn.init.uniform_(w, -1, 1): std 0.58 whatever the fan-in, activations explode."""
    model = PooledCNN()
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.uniform_(p, -1.0, 1.0)
    return _images(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))


@case("init.dead_units", steps=300)
def init_negative_bias_pooled() -> Setup:
    """Conv biases filled with -5 ("to start sparse"): every ReLU is off for every input."""
    model = PooledCNN()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.bias, -5.0)
    return _images(model, torch.optim.Adam(model.parameters(), lr=1e-3))


@case("optim.over_regularized", steps=300)
def optim_adam_decay_half_pooled() -> Setup:
    """Adam with weight_decay=0.5 (L2, coupled): the decay term swamps the gradient and drives weights to zero."""
    model = PooledCNN()
    return _images(model, torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.5))


@case("data.class_imbalance", steps=300)
def data_rare_digit_pooled() -> Setup:
    """'Is it a 3?' with nine in ten 3s filtered out by a buggy sampling step: 2% positives, plain SGD."""
    d = normalize_images(digits32())
    keep = (d.y_train != 3) | (np.arange(len(d.y_train)) % 10 == 0)
    x, y = d.x_train[keep], (d.y_train[keep] == 3).astype(np.int64)
    model = PooledCNN(n_classes=2)
    return Setup(model, loader(x, y, 64), nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01),
                 eval_loader(d.x_test, (d.y_test == 3).astype(np.int64)), "binary")  # fmt: skip


@case("mode.bn_small_batch", steps=300)
def mode_bn_batch_one() -> Setup:
    """A BatchNorm1d MLP fed one sample at a time (batch_size=1): BatchNorm refuses to train at all."""
    d = standardize(digits())
    model = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(model, loader(d.x_train, d.y_train, 1), nn.CrossEntropyLoss(), optimizer,
                 eval_loader(d.x_test, d.y_test), "classification")  # fmt: skip


@case(steps=300)
def healthy_pooled_sgd_momentum() -> Setup:
    """The pooled CNN with SGD lr=0.05, momentum 0.9: learns, but shows little in its first 30 steps."""
    model = PooledCNN()
    return _images(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))


@case(steps=300)
def healthy_pooled_adamw() -> Setup:
    """The pooled CNN with AdamW lr=3e-4: a slow but sound start."""
    model = PooledCNN()
    return _images(model, torch.optim.AdamW(model.parameters(), lr=3e-4))
