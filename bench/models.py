"""The models the cases train: plain MLPs, a CIFAR-size CNN, a small ResNet and a row-by-row RNN."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


def mlp(
    sizes: list[int],
    act: type[nn.Module] = nn.ReLU,
    *,
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear layers of the given widths with `act` (and optional BatchNorm / dropout) between them, none after."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(n_out)] if batch_norm else []
            layers.append(act())
            layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers)


def conv_block(n_in: int, n_out: int, *, batch_norm: bool = False) -> nn.Sequential:
    """3x3 convolution, optional BatchNorm, ReLU and 2x2 max-pooling: halves the image side."""
    norm: list[nn.Module] = [nn.BatchNorm2d(n_out)] if batch_norm else []
    return nn.Sequential(nn.Conv2d(n_in, n_out, 3, padding=1), *norm, nn.ReLU(), nn.MaxPool2d(2))


class ConvNet(nn.Module):
    """A CIFAR-size CNN: conv blocks as `features`, one Linear head as `fc` (the names fine-tuning code uses)."""

    def __init__(
        self, n_classes: int = 10, widths: tuple[int, ...] = (16, 32, 64), *, batch_norm: bool = False, side: int = 32
    ) -> None:
        super().__init__()
        channels = (3, *widths)
        self.features = nn.Sequential(*(conv_block(a, b, batch_norm=batch_norm) for a, b in pairwise(channels)))
        self.fc = nn.Linear(widths[-1] * (side // 2 ** len(widths)) ** 2, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))  # (B, C, H, W) -> (B, n_classes)


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3x3 conv + BatchNorm, with a projected shortcut when the shape changes."""

    def __init__(self, n_in: int, n_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(n_out)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or n_in != n_out:
            self.shortcut = nn.Sequential(nn.Conv2d(n_in, n_out, 1, stride=stride, bias=False), nn.BatchNorm2d(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class TinyResNet(nn.Module):
    """A three-stage ResNet for 32x32 images (widths 16/32/64), global average pooling, Linear head `fc`."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))  # (B, 64, 8, 8) -> (B, 64) -> (B, n_classes)


class RowRNN(nn.Module):
    """Reads an image row by row with a GRU (sequence-first, as nn.GRU defaults) and classifies the last state."""

    def __init__(self, n_features: int = 8, hidden: int = 64, n_classes: int = 10) -> None:
        super().__init__()
        self.rnn = nn.GRU(n_features, hidden)
        self.fc = nn.Linear(hidden, n_classes)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (T, B, F), the layout nn.GRU expects without batch_first."""
        return x.transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(self.sequence(x))  # h: (1, B, hidden)
        return self.fc(h[0])


class PooledCNN(nn.Module):
    """Three conv layers and global average pooling before a Linear `fc`: a slow starter (tens of steps before
    the loss moves), unlike ConvNet's flatten head."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))  # (B, 64, 1, 1) -> (B, n_classes)
