"""Optimizer bugs: parameters that never change, and regularization so strong the weights shrink to ~0."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import diabetes, digits, digits32, normalize_images, photos, standardize, wine
from bench.models import ConvNet, TinyResNet, mlp


@case("optim.not_updating", steps=200)
def optim_model_recreated() -> Setup:
    """The optimizer is built for one model, then the model is created again: the trained model is not the one used."""
    d = normalize_images(digits32())
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model = ConvNet()  # re-created (in the notebook: the model cell was run again after the optimizer cell)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("optim.not_updating", steps=100)
def optim_all_frozen() -> Setup:
    """A freeze loop meant to keep the head trainable tests for "classifier" but the head is named fc: all frozen."""
    d = normalize_images(photos().map_x(lambda x: x.astype(np.float32) / 255))
    model = TinyResNet(n_classes=2)
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith("classifier")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary")


class NumpyHeadMLP(nn.Module):
    """An MLP whose forward post-processes the logits in numpy and wraps them back with requires_grad=True."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp([64, 128, 10])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.body(x).detach().numpy()
        logits = np.clip(logits, -50, 50)  # "numerical safety"
        return torch.tensor(logits, requires_grad=True)  # a new leaf: no gradient reaches self.body


@case("optim.not_updating", steps=300)
def optim_numpy_round_trip() -> Setup:
    """The graph is cut by a numpy round trip in forward; requires_grad=True silences the error, nothing trains."""
    d = standardize(digits())
    model = NumpyHeadMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


class DetachedRegressor(nn.Module):
    """A regression MLP that returns .detach() of its output (copied from inference code) and re-enables grad."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp([10, 64, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).detach().requires_grad_()


@case("optim.not_updating", steps=300)
def optim_detached_output() -> Setup:
    """A diabetes regressor whose forward returns out.detach().requires_grad_(): the loss never reaches the weights."""
    d = standardize(diabetes())
    mean, std = d.y_train.mean(), d.y_train.std()
    d = d.map_y(lambda y: ((y - mean) / std)[:, None])
    model = DetachedRegressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


@case("optim.not_updating", steps=200, split="holdout")
def optim_old_head() -> Setup:
    """Fine-tuning: backbone frozen, optimizer over model.fc, then model.fc replaced by a new head it does not hold."""
    d = normalize_images(digits32())
    model = ConvNet(n_classes=1000)  # "pretrained" with an ImageNet-size head
    for p in model.parameters():
        p.requires_grad = False
    model.fc.weight.requires_grad = model.fc.bias.requires_grad = True
    optimizer = torch.optim.Adam(model.fc.parameters(), lr=1e-3)
    model.fc = nn.Linear(model.fc.in_features, 10)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("optim.over_regularized", steps=200)
def optim_weight_decay_one() -> Setup:
    """SGD with weight_decay=1 (meant 1e-4): every step shrinks the weights by 5%, the CNN collapses to its biases."""
    d = normalize_images(digits32())
    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1.0)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case("optim.over_regularized", steps=300, split="holdout")
def optim_adam_weight_decay() -> Setup:
    """Adam(weight_decay=1.0) on wine: the L2 term dominates every gradient and the weights go to ~0."""
    d = standardize(wine())
    model = mlp([13, 32, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1.0)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case("optim.over_regularized", steps=300)
def optim_dropout_095() -> Setup:
    """Dropout p=0.95 after each of three hidden layers (p read as the keep probability): almost no signal trains."""
    d = standardize(digits())
    model = mlp([64, 256, 256, 256, 10], dropout=0.95)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")
