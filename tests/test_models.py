"""The reference models: SimpleCNN sized from the image, its classic init, and the small ResNet."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from torchmedic import InputError, ResNet9, SimpleCNN
from torchmedic.models import MODELS, build_model


@pytest.mark.parametrize(("in_channels", "image_size"), [(1, 8), (1, 28), (3, 32), (3, 33)])
def test_simplecnn_linear_is_sized_from_the_image(in_channels: int, image_size: int) -> None:
    model = SimpleCNN(in_channels=in_channels, num_classes=7, image_size=image_size)
    assert model.fc.in_features == 16 * (image_size // 2) ** 2
    out = model(torch.randn(5, in_channels, image_size, image_size))
    assert out.shape == (5, 7)


def test_simplecnn_runs_on_cifar_sized_images_where_a_28x28_linear_would_not() -> None:
    """The forum answer's Linear(16 * 14 * 14, 10) fails on 32x32 CIFAR-10 images; the default model takes them."""
    assert SimpleCNN()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(RuntimeError):
        SimpleCNN(image_size=28)(torch.randn(2, 3, 32, 32))


def test_simplecnn_has_the_classic_init() -> None:
    model = SimpleCNN(in_channels=3, num_classes=10, image_size=32)
    fan_out = model.conv1.out_channels * 3 * 3
    assert model.conv1.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.15)  # Kaiming, fan_out
    fan_in, fan_out_fc = model.fc.in_features, model.fc.out_features
    bound = math.sqrt(6 / (fan_in + fan_out_fc))  # Xavier uniform
    assert model.fc.weight.abs().max().item() <= bound
    assert model.fc.weight.abs().max().item() > 0.95 * bound
    assert torch.count_nonzero(model.conv1.bias) == 0
    assert torch.count_nonzero(model.fc.bias) == 0


def test_simplecnn_refuses_images_too_small_to_pool() -> None:
    with pytest.raises(InputError, match="at least 2x2"):
        SimpleCNN(image_size=1)


@pytest.mark.parametrize("image_size", [8, 32])
def test_resnet_takes_any_image_from_8x8(image_size: int) -> None:
    model = ResNet9(in_channels=1, num_classes=4, width=8)
    assert model(torch.randn(3, 1, image_size, image_size)).shape == (3, 4)


def test_resnet_blocks_start_near_the_identity_path() -> None:
    """A residual block adds its body to its input, so the input passes through unchanged when the body is zero."""
    model = ResNet9(width=8)
    block = model.features[2]
    for param in block.body.parameters():
        nn.init.zeros_(param)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(block(x), x)


def test_build_model_names_the_choices() -> None:
    assert {type(build_model(name, 3, 10, 32)) for name in MODELS} == {SimpleCNN, ResNet9}
    with pytest.raises(InputError, match="simplecnn, resnet"):
        build_model("vgg", 3, 10, 32)
    with pytest.raises(InputError, match="at least 8x8"):
        build_model("resnet", 1, 10, 4)
