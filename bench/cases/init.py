"""Initialization bugs: weights too small or too large for the depth, symmetric (zero/constant), dead ReLUs, NaN."""

from __future__ import annotations

import torch
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import breast_cancer, digits, digits32, normalize_images, standardize, wine
from bench.models import ConvNet, mlp

LAYERS = (nn.Linear, nn.Conv2d)


@case("init.too_small", steps=300)
def init_small_deep_mlp() -> Setup:
    """An 8-layer ReLU MLP initialized with normal(std=1e-3): the signal dies layer by layer, the output is the bias."""
    d = standardize(digits())
    model = mlp([64] + [256] * 7 + [10])
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1e-3)
            nn.init.zeros_(m.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("init.too_small", steps=200, split="holdout")
def init_small_cnn() -> Setup:
    """A CIFAR-size CNN whose conv and linear weights are drawn with normal_(0, 0.001), trained with SGD."""
    d = normalize_images(digits32())
    model = ConvNet(widths=(32, 32, 64, 64))
    for m in model.modules():
        if isinstance(m, LAYERS):
            m.weight.data.normal_(0, 0.001)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("init.too_large", steps=300)
def init_large_mlp() -> Setup:
    """A 4-layer ReLU MLP initialized with normal(std=1.0): activations grow ~11x per layer, SGD steps blow up."""
    d = standardize(digits())
    model = mlp([64, 256, 256, 256, 256, 10])
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("init.too_large", steps=200, split="holdout")
def init_large_cnn() -> Setup:
    """A CNN whose weights are re-drawn with std=2.0 ("bigger init breaks symmetry better"): activations explode."""
    d = normalize_images(digits32())
    model = ConvNet()
    for m in model.modules():
        if isinstance(m, LAYERS):
            nn.init.normal_(m.weight, std=2.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("init.symmetric", steps=300)
def init_zeros_mlp() -> Setup:
    """Every Linear weight and bias set to zero: hidden units are identical and receive no gradient."""
    d = standardize(wine())
    model = mlp([13, 64, 64, 3])
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case("init.symmetric", steps=200)
def init_constant_cnn() -> Setup:
    """A CNN with nn.init.constant_(weight, 0.01) everywhere: all filters of a layer stay the same filter."""
    d = normalize_images(digits32())
    model = ConvNet()
    for m in model.modules():
        if isinstance(m, LAYERS):
            nn.init.constant_(m.weight, 0.01)
            nn.init.zeros_(m.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("init.dead_units", steps=200)
def init_dead_cnn() -> Setup:
    """Conv biases initialized to -10 (copied from a sparse-coding recipe): every ReLU is off for every image."""
    d = normalize_images(digits32())
    model = ConvNet()
    for m in model.features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.bias, -10.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("init.dead_units", steps=300)
def init_dead_mlp() -> Setup:
    """Hidden biases filled with -5 on a breast-cancer MLP: no hidden ReLU ever fires, the output is constant."""
    d = standardize(breast_cancer())
    model = mlp([30, 64, 64, 2])
    with torch.no_grad():
        model[0].bias.fill_(-5.0)
        model[2].bias.fill_(-5.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary", batch_size=32)


@case("init.nonfinite", steps=200)
def init_unit_norm_zero_head() -> Setup:
    """A custom init that scales every weight row to unit norm, run after the head was zeroed "to start from the
    prior": 0/0 writes NaN into the head, so every output and gradient is NaN from the first batch."""
    d = standardize(wine())
    model = mlp([13, 64, 64, 3])
    nn.init.zeros_(model[4].weight)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.div_(m.weight.norm(dim=1, keepdim=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)
