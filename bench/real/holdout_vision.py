"""Held-out vision programs rebuilt from resolved public threads: image classifiers (Keras models translated layer by
layer, a PyTorch course CNN), a binary fine-tuning classifier and U-Net style segmenters, each registered with
split="holdout" so that they are measured once, at the end.

The threads' datasets are replaced by the offline stand-ins of `bench.real.standins` and `bench.data` (28x28 digits
for MNIST and Fashion-MNIST, 32x32 digits for CIFAR-size images, photo patches for two-class photos, `shapes()` for
segmentation masks). Keras layers get Keras's defaults written out (glorot-uniform weights, zero biases, eps=1e-7) and
Keras losses keep Keras's clipping, so they saturate where the user's did. Widths are scaled down for the CPU where a
docstring says so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.cases.registry import Setup, case
from bench.data import Split, photos
from bench.real.images import (
    KERAS_EPS,
    ResNet18Small,
    _column,
    _imagenet_normalized,
    _keras_adam,
    _keras_init,
    _mnist_digits,
    _photos01,
    keras_categorical_crossentropy,
)
from bench.real.segmentation import BNUNet, MilesialUNet, MMSegUNetFCN, _channel, _milesial_ce_dice, _threshold
from bench.real.standins import loaders, shapes

# ----------------------------------------------------------------------------------------------------- helpers


def keras_sparse_categorical_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras's `sparse_categorical_crossentropy` on softmax probabilities and class ids, as tf.keras 1.x computed it:
    clip to [eps, 1 - eps], then the negative log of the true class (no gradient where the clip is active)."""
    p = p.clamp(KERAS_EPS, 1 - KERAS_EPS)
    return F.nll_loss(torch.log(p), y)


def _keras_rmsprop(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    """keras.optimizers.RMSprop() with its defaults (lr=1e-3, rho=0.9, eps=1e-7)."""
    return torch.optim.RMSprop(model.parameters(), lr=lr, alpha=0.9, eps=KERAS_EPS)


def _keras_init_all(model: nn.Module) -> nn.Module:
    """Keras's defaults for Dense, Conv2D and Conv2DTranspose: glorot-uniform kernels, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def _pixels_255(split: Split) -> Split:
    """The [0, 1] images back to raw 0..255 pixel values, as `load_data()` or a Kaggle CSV hands them over."""
    return split.map_x(lambda x: np.round(x * 255.0).astype(np.float32))


def _above(p: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Class predictions of a sigmoid output read at probability `p` (the user's threshold), per sample or pixel."""

    def predict(out: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(out) > p).long().reshape(len(out), *out.shape[2:])

    return predict


def _argmax(out: torch.Tensor) -> torch.Tensor:
    """Keras's `argmax(model.predict(x), axis=1)`, also over a single output unit (always class 0 then)."""
    return out.argmax(dim=1)


# ----------------------------------------------------------------------------------------------------- models


class KerasBasicDense(nn.Module):
    """The TensorFlow "basic classification" tutorial model: Flatten(28, 28) -> Dense(128, relu) -> Dense(10,
    softmax), Keras default init."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(784, 128)
        self.out = nn.Linear(128, 10)
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.hidden(x.reshape(len(x), -1)))  # (B, 784) -> (B, 128)
        return F.softmax(self.out(h), dim=1)  # (B, 10) probabilities


class FashionMNISTModelV2(nn.Module):
    """The PyTorch course's TinyVGG for Fashion-MNIST: two blocks of (3x3 conv, ReLU, 3x3 conv, ReLU, 2x2 max-pool)
    with `hidden_units` channels, then Flatten and Linear(hidden_units * 7 * 7, 10); PyTorch's default init."""

    def __init__(self, input_shape: int = 1, hidden_units: int = 10, output_shape: int = 10) -> None:
        super().__init__()

        def block(n_in: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(n_in, hidden_units, 3, padding=1), nn.ReLU(),
                nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            )  # fmt: skip

        self.conv_block_1 = block(input_shape)
        self.conv_block_2 = block(hidden_units)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(hidden_units * 7 * 7, output_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv_block_2(self.conv_block_1(x)))  # (B, 1, 28, 28) -> (B, 10) logits


class KerasSmallConvNet(nn.Module):
    """The Keras "classifier from little data" convnet: three 3x3 Conv2D + ReLU + 2x2 max-pool stages (32, 32, 64),
    Flatten, Dense(64, relu), Dropout(0.5), Dense(`units`) and the output activation; Keras default init."""

    def __init__(self, units: int, activation: str) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.dense = nn.Linear(64 * 2 * 2, 64)
        self.out = nn.Linear(64, units)
        self.activation = activation
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)  # (B, 3, 32, 32) -> (B, 256)
        x = F.dropout(F.relu(self.dense(x)), 0.5, self.training)
        x = self.out(x)
        return torch.sigmoid(x) if self.activation == "sigmoid" else F.softmax(x, dim=1)


class TransferLearningModel(nn.Module):
    """Lightning's computer-vision fine-tuning example: a ResNet feature extractor and the head Linear(feat, 256) -
    ReLU - Linear(256, 32) - Linear(32, 1). With `sigmoid_in_forward` the forward returns torch.sigmoid of it, as the
    example did before the fix. The ResNet-50 is replaced by the quartered ResNet-18 layout, trained from scratch."""

    def __init__(self, *, sigmoid_in_forward: bool) -> None:
        super().__init__()
        self.backbone = ResNet18Small(n_classes=1)
        self.backbone.fc = nn.Identity()  # type: ignore[assignment]
        self.fc = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 16), nn.Linear(16, 1))
        self.sigmoid_in_forward = sigmoid_in_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(self.backbone(x))  # (B, 3, 32, 32) -> (B, 1)
        return torch.sigmoid(x) if self.sigmoid_in_forward else x


class KerasNerveUNet(nn.Module):
    """The Keras U-Net of the ultrasound nerve segmentation repo: five levels of two 3x3 'same' Conv2D + ReLU (32 to
    512 filters, divided by 4 here), 2x2 max-pools, Conv2DTranspose up-sampling with concatenated skips, and a 1x1
    Conv2D to one map. The thread's head: reshape the map to (H * W, 1) and apply softmax over that last axis."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 64, 128)) -> None:
        super().__init__()

        def double(n_in: int, n_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(n_in, n_out, 3, padding=1), nn.ReLU(), nn.Conv2d(n_out, n_out, 3, padding=1), nn.ReLU()
            )

        w = list(widths)
        self.downs = nn.ModuleList(double(a, b) for a, b in zip([3, *w[:-1]], w, strict=True))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(len(w) - 1)))
        self.convs = nn.ModuleList(double(2 * w[i], w[i]) for i in reversed(range(len(w) - 1)))
        self.conv10 = nn.Conv2d(w[0], 1, 1)
        _keras_init_all(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x)
            if i < len(self.downs) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, conv in zip(self.ups, self.convs, strict=True):
            x = conv(torch.cat([up(x), skips.pop()], dim=1))
        logits = self.conv10(x)  # (B, 1, H, W)
        flat = logits.reshape(len(logits), -1, 1)  # Reshape((H * W, 1))
        return F.softmax(flat, dim=-1).reshape(logits.shape)  # softmax over a single channel: always 1


# ----------------------------------------------------------------------------------------------------- cases

TF_BASIC_THREAD = (
    "https://datascience.stackexchange.com/questions/39929/why-normalize-when-all-features-are-on-the-same-scale"
)
TINYVGG_THREAD = "https://blog.gitcode.com/3ec123ad43da921deff784fd702ca18b.html"
MMSEG_BINARY_THREAD = "https://github.com/open-mmlab/mmsegmentation/issues/2201"


@case("data.unnormalized", split="holdout", steps=300, source=TF_BASIC_THREAD)
def hv_keras_fashion_dense_raw_pixels() -> Setup:
    """The TensorFlow basic-classification tutorial (Flatten -> Dense(128, relu) -> Dense(10, softmax), adam,
    sparse_categorical_crossentropy) reaches 85% with the tutorial's `/ 255` and 10% without it. The answer: the raw
    0..255 pixels put the units far outside the range where the activations have usable gradients. Keras defaults
    (glorot init, Adam eps=1e-7, batch 32, clipped cross-entropy); Fashion-MNIST replaced by 28x28 digits as 0..255."""
    model = KerasBasicDense()
    train, held = loaders(_pixels_255(_mnist_digits()), batch_size=32)
    return Setup(model, train, keras_sparse_categorical_crossentropy, _keras_adam(model), held, "classification")


@case(split="holdout", steps=300, source=TF_BASIC_THREAD)
def hv_fixed_keras_fashion_dense_scaled() -> Setup:
    """The same tutorial model with the tutorial's preprocessing the user had dropped: pixels divided by 255. Learns.
    Keras defaults, batch 32; Fashion-MNIST replaced by 28x28 digits."""
    model = KerasBasicDense()
    train, held = loaders(_pixels_255(_mnist_digits()).map_x(lambda x: x / 255.0), batch_size=32)
    return Setup(model, train, keras_sparse_categorical_crossentropy, _keras_adam(model), held, "classification")


@case("optim.not_updating", split="holdout", steps=1000, source=TINYVGG_THREAD)
def hv_tinyvgg_optimizer_of_previous_instance() -> Setup:
    """The PyTorch course's FashionMNISTModelV2 (TinyVGG, hidden_units=10) stays at 10% train and test accuracy. The
    write-up: the model was instantiated again after the loss and optimizer were defined, so SGD holds the parameters
    of the old instance and the trained model never changes. SGD lr=0.1, CrossEntropyLoss, batch 32 as in the course;
    Fashion-MNIST replaced by 28x28 digits; 24 passes over them (the course ran 3 epochs of 1875 steps)."""
    first = FashionMNISTModelV2()
    optimizer = torch.optim.SGD(first.parameters(), lr=0.1)
    model = FashionMNISTModelV2()  # the model cell run again after the optimizer cell
    train, held = loaders(_mnist_digits(), batch_size=32)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "classification")


@case(split="holdout", steps=1000, source=TINYVGG_THREAD)
def hv_fixed_tinyvgg_optimizer_after_model() -> Setup:
    """The same TinyVGG after the fix: the model is instantiated first and the optimizer built from its parameters.
    Learns. SGD lr=0.1, CrossEntropyLoss, batch 32; Fashion-MNIST replaced by 28x28 digits."""
    model = FashionMNISTModelV2()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train, held = loaders(_mnist_digits(), batch_size=32)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "classification")


@case("arch.output_activation", split="holdout", steps=120,
      source="https://github.com/Lightning-AI/pytorch-lightning/pull/7096")  # fmt: skip
def hv_lightning_finetune_sigmoid_then_bce_with_logits() -> Setup:
    """Lightning's computer-vision fine-tuning example (cats vs dogs) returned torch.sigmoid(fc(x)) from forward and
    trained with binary_cross_entropy_with_logits, so the loss squashes an output already in [0, 1] and every score it
    reports is above 0.5; the fix removed the sigmoid from forward. Adam lr=1e-3 and batch 32 as in the example; the
    pretrained ResNet-50 replaced by the quartered ResNet-18 layout trained from scratch (no download); cats and dogs
    replaced by the two-photo 32x32 patches, ImageNet normalization."""
    d = photos().map_x(lambda x: _imagenet_normalized((x / 255.0).astype(np.float32)))
    model = TransferLearningModel(sigmoid_in_forward=True)
    train, held = loaders(_column(d), batch_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(model, train, nn.BCEWithLogitsLoss(), optimizer, held, "binary", predict=_above(0.5))


@case("arch.softmax_single_unit", split="holdout", steps=100,
      source="https://github.com/jocicmarko/ultrasound-nerve-segmentation/issues/18")  # fmt: skip
def hv_keras_unet_softmax_over_one_channel() -> Setup:
    """The ultrasound-nerve Keras U-Net with the head the user asked about: the 1-channel 1x1 conv output reshaped to
    (H * W, 1) and passed through softmax, trained with categorical_crossentropy. The maintainer: softmax over a
    single output channel is pointless (it is 1 everywhere, so the loss and its gradient vanish); it needs at least two
    channels. Adam lr=1e-5 as in the repo, batch 32; filters 32..512 divided by 4; 96x96 ultrasound crops replaced by
    32x32 shapes with 0/1 masks."""
    d = shapes(classes=2).map_y(_channel)
    model = KerasNerveUNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, eps=KERAS_EPS)
    train, held = loaders(d, batch_size=32)

    def loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return keras_categorical_crossentropy(p.reshape(len(p), -1, 1), y.reshape(len(y), -1, 1))

    return Setup(model, train, loss, optimizer, held, "segmentation", predict=_threshold(0.5))


@case("data.class_imbalance", split="holdout", steps=150,
      source="https://discuss.pytorch.org/t/bcewithlogitsloss-weight/174762")  # fmt: skip
def hv_unet_bce_with_logits_tiny_foreground() -> Setup:
    """Binary masks whose foreground is a tiny share of the pixels (5e-5 in the thread), trained with a plain
    BCEWithLogitsLoss: the model predicts 0 everywhere at a small loss. The answer: weight the rare positives with
    `pos_weight` (negatives / positives). The thread names no model: a BN U-Net with one output map, Adam lr=1e-3,
    batch 8 stand in; 64x64 shapes with specks of a few pixels (about 0.1% foreground)."""
    d = shapes(n=480, side=64, classes=2, radius=(0.01, 0.015)).map_y(_channel)
    model = BNUNet(1, widths=(8, 16, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train, held = loaders(d, batch_size=8)
    return Setup(model, train, nn.BCEWithLogitsLoss(), optimizer, held, "segmentation")


@case("arch.softmax_single_unit", split="holdout", steps=150, source="https://boohere.com/de/detail/80265.html")
def hv_keras_binary_dense1_softmax_categorical() -> Setup:
    """Two Keras binary image classifiers: the sigmoid + binary_crossentropy one works, the second, Dense(1) with
    softmax and categorical_crossentropy, always answers class 0. The answer: softmax over one output can only pick
    that one class (it is 1 for every input and its gradient is 0); use Dense(2, softmax) or the sigmoid model. The
    thread's convnet is not shown: the Keras little-data convnet (Conv2D 32-32-64, Dense(64), Dropout 0.5) stands in,
    RMSprop defaults and batch 32 for the unstated optimizer; the two classes replaced by 32x32 photo patches in [0,
    1]; predictions read as Keras's argmax over the output units."""
    model = KerasSmallConvNet(units=1, activation="softmax")
    train, held = loaders(_column(_photos01()), batch_size=32)
    return Setup(model, train, keras_categorical_crossentropy, _keras_rmsprop(model), held, "binary", _argmax)


@case("loss.task_mismatch", split="holdout", steps=150, source="https://github.com/milesial/Pytorch-UNet/issues/291")
def hv_milesial_unet_greyscale_mask_values() -> Setup:
    """milesial's U-Net (2021 code: CrossEntropyLoss plus Dice, n_classes=2) on the user's masks stops with "Target
    192 is out of bounds". The maintainer: the masks are loaded as raw greyscale values (0..255), not as class
    indices 0..n_classes-1. Widths 64..1024 divided by 8, transposed-conv up-sampling and bias-free convs as in that
    code, RMSprop lr=1e-5 (momentum 0.9, weight decay 1e-8) and batch 1 as in train.py; the user's images replaced by
    32x32 shapes whose object pixels are grey level 192."""
    d = shapes(classes=2).map_y(lambda y: y * 192)
    model = MilesialUNet(2, bilinear=False, bias=False)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
    train, held = loaders(d, batch_size=1)
    return Setup(model, train, _milesial_ce_dice(2), optimizer, held, "segmentation")


@case(split="holdout", steps=150, source=MMSEG_BINARY_THREAD)
def hv_fixed_mmseg_one_channel_use_sigmoid() -> Setup:
    """Binary mmsegmentation with `out_channels=1`: softmax cross-entropy over the one channel kept the loss at 0 and
    the model predicted positive everywhere; the maintainers' fix, `loss_decode.use_sigmoid=True`, turns the loss into
    binary cross-entropy on the single logit map, and predictions are sigmoid > threshold 0.3. Learns. The colab's
    config is not in the thread: mmseg's UNet + FCNHead (widths 64..1024 divided by 16) with SGD lr=0.01, momentum
    0.9, weight decay 5e-4, batch 4 stands in; 32x32 shapes with 0/1 masks."""
    d = shapes(classes=2).map_y(_channel)
    model = MMSegUNetFCN(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    train, held = loaders(d, batch_size=4)
    return Setup(model, train, nn.BCEWithLogitsLoss(), optimizer, held, "segmentation", predict=_above(0.3))
