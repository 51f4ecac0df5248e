"""Reference models for the classic recipe, built by name (`torchmedic train --model NAME`)."""

from __future__ import annotations

from torch import nn

from torchmedic.errors import InputError
from torchmedic.models.resnet import ResNet9
from torchmedic.models.simple_cnn import SimpleCNN

MODELS = ("simplecnn", "resnet")


def build_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """The named reference model, sized for the data."""
    if name == "simplecnn":
        return SimpleCNN(in_channels, num_classes, image_size)
    if name == "resnet":
        if image_size < 8:
            raise InputError(f"--model resnet pools three times and needs images of at least 8x8, not {image_size}.")
        return ResNet9(in_channels, num_classes)
    raise InputError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}.")


__all__ = ["MODELS", "ResNet9", "SimpleCNN", "build_model"]
