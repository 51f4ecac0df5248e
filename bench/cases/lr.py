"""Learning-rate bugs: steps so large they overshoot or kill units, or so small nothing moves in a real budget."""

from __future__ import annotations

import torch
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import (
    diabetes,
    digits,
    digits32,
    normalize_images,
    photos,
    standardize,
    wine,
)
from bench.models import ConvNet, TinyResNet, mlp


@case("lr.too_high", steps=120)
def lr_high_adam_cnn() -> Setup:
    """Adam with lr=0.1 on a CIFAR-size CNN: the first steps push every ReLU dead, one class is left."""
    d = normalize_images(digits32())
    model = ConvNet(widths=(32, 64, 128))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("lr.too_high", steps=300)
def lr_high_sgd_mlp() -> Setup:
    """Plain SGD with lr=5 on a wine MLP ("higher is faster"): the loss diverges."""
    d = standardize(wine())
    model = mlp([13, 64, 64, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case("lr.too_high", steps=120, split="holdout")
def lr_high_sgd_momentum_resnet() -> Setup:
    """A small ResNet on photo patches with SGD lr=10 and momentum 0.9: the head's weights blow up."""
    d = normalize_images(photos().map_x(lambda x: x.astype("float32") / 255))
    model = TinyResNet(n_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=10.0, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary")


@case("lr.too_low", steps=200)
def lr_low_sgd_cnn() -> Setup:
    """Plain SGD with lr=1e-5 on a CIFAR-size CNN: after 200 steps the weights have barely moved."""
    d = normalize_images(digits32())
    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("lr.too_low", steps=300)
def lr_low_adam_regression() -> Setup:
    """Adam with lr=1e-6 on a standardized diabetes regression: the output stays at its initial near-constant."""
    d = standardize(diabetes())
    mean, std = d.y_train.mean(), d.y_train.std()
    d = d.map_y(lambda y: ((y - mean) / std)[:, None])
    model = mlp([10, 64, 64, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


@case("lr.too_low", steps=300, split="holdout")
def lr_low_sgd_mlp() -> Setup:
    """SGD with lr=1e-4 and no momentum on a deep digits MLP: the loss sits at ln 10 for the whole budget."""
    d = standardize(digits())
    model = mlp([64, 128, 128, 128, 10])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")
