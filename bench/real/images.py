"""Image classification programs rebuilt from resolved public threads: MNIST/CIFAR-size CNNs, MLPs on pixels, Keras
models translated layer by layer, each with the thread's own architecture, loss, optimizer and hyperparameters.

The threads' datasets are replaced by offline stand-ins of the same shape and task (`bench.real.standins`,
`bench.data`); channel widths are scaled down for CPU where a docstring says so. Keras layers get Keras's defaults
written out (glorot-uniform weights, zero biases, Adam eps=1e-7), and Keras losses are translated with Keras's own
clipping so that they saturate where the user's did.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench.cases.registry import Setup, case
from bench.data import Split, digits32, normalize_images, photos, tensor
from bench.models import BasicBlock
from bench.real.standins import loaders, mnist_like

KERAS_EPS = 1e-7  # keras.backend.epsilon(): Keras clips probabilities to [eps, 1 - eps] inside its losses


# ----------------------------------------------------------------------------------------------------- helpers


def _keras_init(model: nn.Module) -> nn.Module:
    """Keras's defaults for Dense and Conv2D layers: glorot-uniform kernels and zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def _keras_adam(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    """keras.optimizers.Adam() with its defaults (lr=1e-3, eps=1e-7)."""
    return torch.optim.Adam(model.parameters(), lr=lr, eps=KERAS_EPS)


def keras_binary_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras's `binary_crossentropy` on sigmoid probabilities, as the TF1 backend computed it: clip, back to logits,
    then sigmoid cross-entropy. Targets outside {0, 1} are accepted and give a loss that is unbounded below."""
    p = p.clamp(KERAS_EPS, 1 - KERAS_EPS)
    logits = torch.log(p / (1 - p))
    y = y.float().reshape(logits.shape)
    return (logits.clamp_min(0) - logits * y + torch.log1p(torch.exp(-logits.abs()))).mean()


def keras_categorical_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras's `categorical_crossentropy` on probabilities and one-hot targets: renormalize, clip, sum of -y log p."""
    p = (p / p.sum(dim=-1, keepdim=True)).clamp(KERAS_EPS, 1 - KERAS_EPS)
    return -(y.float() * torch.log(p)).sum(dim=-1).mean()


def _scaled(split: Split, factor: float, dtype: type = np.float32) -> Split:
    """The split's images times `factor` in `dtype` (e.g. [0, 1] digits back to 0..255 pixels)."""
    return split.map_x(lambda x: (x * factor).astype(dtype))


def _two_classes(split: Split, a: int, b: int) -> Split:
    """Only the samples of classes `a` and `b`, relabelled 0 and 1."""

    def keep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = (y == a) | (y == b)
        return x[mask], (y[mask] == b).astype(np.int64)

    (xa, ya), (xb, yb) = keep(split.x_train, split.y_train), keep(split.x_test, split.y_test)
    return Split(xa, ya, xb, yb)


def _photos01() -> Split:
    """The 32x32 photo patches (china 0, flower 1) as floats in [0, 1], as Keras users get them after `/ 255.`."""
    return photos().map_x(lambda x: (x / 255.0).astype(np.float32))


def _imagenet_normalized(x: np.ndarray) -> np.ndarray:
    """`transforms.Normalize` with the ImageNet mean and std, on (N, 3, H, W) images in [0, 1]."""
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32)


def _mnist_digits() -> Split:
    """28x28 digits in [0, 1] with strokes thinned (pixel ** 3) to MNIST's ink: mean pixel 0.15 against MNIST's 0.13
    (the bilinear upsampling alone leaves 0.31, which changes what a fixed learning rate does)."""
    return mnist_like().map_x(lambda x: (x**3).astype(np.float32))


def _one_hot(split: Split, classes: int) -> Split:
    """Float one-hot targets, as Keras's `to_categorical` (or `class_mode='categorical'`) gives them."""
    return split.map_y(lambda y: np.eye(classes, dtype=np.float32)[y])


def _column(split: Split) -> Split:
    """Float targets of shape (N, 1), as a Keras `fit` with a single sigmoid or softmax unit receives them."""
    return split.map_y(lambda y: y.astype(np.float32)[:, None])


def _rounded(out: torch.Tensor) -> torch.Tensor:
    """What `np.round(model.predict(x))` gives for a single probability output."""
    return out.round().reshape(len(out))


class Flatten28(nn.Module):
    """Flattens (B, 1, 28, 28) images to (B, 784) vectors, as MNIST MLP code does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1)


# ----------------------------------------------------------------------------------------------------- models


class NumpyMLP(nn.Module):
    """A from-scratch numpy MLP, 784 -> 256 -> 256 -> 256 -> 10 with ReLU, weights drawn as `scale * randn`."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (
            nn.Linear(a, b) for a, b in ((784, 256), (256, 256), (256, 256), (256, 10))
        )
        for fc in (self.fc1, self.fc2, self.fc3, self.fc4):
            nn.init.normal_(fc.weight, std=scale)
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), -1)  # (B, 1, 28, 28) -> (B, 784)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return self.fc4(x)


class TFHiddenLayerNet(nn.Module):
    """The TensorFlow MNIST tutorial's softmax regression with a hidden layer added: 784 -> `hidden` -> 10, the
    softmax applied in the model (`y = tf.nn.softmax(...)`), weights from `init` ("zeros" or a uniform range)."""

    def __init__(self, init: str | float, hidden: int = 100, activation: str = "relu") -> None:
        super().__init__()
        self.hidden = nn.Linear(784, hidden)
        self.out = nn.Linear(hidden, 10)
        self.activation = activation
        for layer in (self.hidden, self.out):
            if init == "zeros":
                nn.init.zeros_(layer.weight)
            else:
                nn.init.uniform_(layer.weight, -float(init), float(init))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x.reshape(len(x), -1))  # (B, 784) -> (B, hidden)
        h = F.softmax(h, dim=1) if self.activation == "softmax" else F.relu(h)
        return F.softmax(self.out(h), dim=1)  # probabilities, as the tutorial's `y`


def tf_cross_entropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The tutorial's `reduce_mean(-reduce_sum(y_ * log(y)))` on the model's softmax output: log then NLL."""
    return F.nll_loss(torch.log(p), y)


class OneUnitSoftmaxCNN(nn.Module):
    """Keras `Conv2D(30, 3, relu) -> Conv2D(64, 3, relu) -> Flatten -> Dense(1, softmax)` (widths halved)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 15, 3)
        self.conv2 = nn.Conv2d(15, 32, 3)
        self.dense = nn.Linear(32 * 28 * 28, 1)
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))  # (B, 32, 28, 28)
        return F.softmax(self.dense(torch.flatten(x, 1)), dim=1)  # (B, 1): softmax over one unit


class ScaleBranch(nn.Module):
    """One scale of the multi-scale patch classifier: two conv blocks and global average pooling to 32 features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return x.mean(dim=(2, 3))  # (B, 32)


class MultiScalePatchNet(nn.Module):
    """An Xception-like binary patch classifier over 16, 32 and 48 pixel views of a patch, concatenated and scored by
    two Linear layers, with the sigmoid in the model."""

    def __init__(self) -> None:
        super().__init__()
        self.branches = nn.ModuleList(ScaleBranch() for _ in range(3))
        self.fc_last_1 = nn.Linear(3 * 32, 64)
        self.fc_last_2 = nn.Linear(64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = (x[:, :, 8:24, 8:24], x, F.interpolate(x, size=48, mode="bilinear", align_corners=False))
        out = torch.cat([branch(v) for branch, v in zip(self.branches, views, strict=True)], dim=1)  # (B, 96)
        out = F.relu(self.fc_last_1(out))
        return torch.sigmoid(self.fc_last_2(out))  # (B, 1) probability


class KerasCifar10CNN(nn.Module):
    """The 2015 Keras `cifar10_cnn.py` example (widths halved): two conv-conv-pool-dropout stages, Dense(256), dropout,
    Dense(n_classes) with softmax."""

    def __init__(self, n_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 6 * 6, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, n_classes),
            nn.Softmax(dim=1),
        )  # fmt: skip
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, 3, 32, 32) -> (B, n_classes) probabilities


class TFDeepCNN(nn.Module):
    """A TensorFlow-style CNN of five 3x3 conv layers and three fully connected layers, weights from
    `truncated_normal(stddev=0.1)` and biases 0.1 as in the TF tutorials (widths reduced for CPU)."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        widths = (3, 8, 8, 16, 16, 16)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in pairwise(widths))
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 4 * 4, 64), nn.Linear(64, 32), nn.Linear(32, n_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.1, a=-0.2, b=0.2)
                nn.init.constant_(m.bias, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i in (0, 2, 4):
                x = F.max_pool2d(x, 2)  # 32 -> 16 -> 8 -> 4
        x = torch.flatten(x, 1)  # (B, 256)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class FacialKeypointNet(nn.Module):
    """A Caffe facial-keypoint regressor: five conv layers (conv2 in two groups, an LRN after pool2, across channels
    here where the prototxt normalizes within each channel), two inner-product layers (100 units, then the keypoints)
    with dropout 0.5, and a ReLU on the keypoint output as in the prototxt. Conv widths halved and kernels shrunk for
    32x32 inputs. `filler` is the weight init: "constant" is what Caffe does for a layer whose `weight_filler` is
    missing (all zeros); every bias gets the prototxt's constant 0.1."""

    def __init__(self, keypoints: int = 1, filler: str = "constant") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(32, 16, 3, padding=1)
        self.conv4 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv5 = nn.Conv2d(32, 16, 3, padding=1)
        self.ip1 = nn.Linear(16 * 3 * 3, 100)
        self.ip2 = nn.Linear(100, 2 * keypoints)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if filler == "constant":
                    nn.init.zeros_(m.weight)
                else:
                    nn.init.xavier_uniform_(m.weight)
                nn.init.constant_(m.bias, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 16, 16, 16)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 32, 8, 8)
        x = F.local_response_norm(x, 3, alpha=5e-5, beta=0.75)
        x = F.relu(self.conv5(F.relu(self.conv4(F.relu(self.conv3(x))))))
        x = F.dropout(F.max_pool2d(x, 4, stride=2), 0.5, self.training)  # (B, 16, 3, 3)
        x = F.dropout(F.relu(self.ip1(torch.flatten(x, 1))), 0.5, self.training)
        return F.relu(self.ip2(x))


def caffe_euclidean_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Caffe's EuclideanLoss: the summed squared error over the batch divided by 2N."""
    return ((out - y) ** 2).sum() / (2 * len(out))


class DistillationTeacher(nn.Module):
    """A distillation repo's CIFAR ResNet teacher (one block per stage, widths quartered for CPU) whose head calls
    `F.dropout(out, 1)` before the Linear layer: p=1, and functional dropout ignores eval mode."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.stages = nn.Sequential(
            BasicBlock(8, 8, 1), BasicBlock(8, 16, 2), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2)
        )
        self.linear = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(F.relu(self.bn1(self.conv1(x))))  # (B, 64, 4, 4)
        out = F.avg_pool2d(out, 4)
        out = F.dropout(out, 1)  # the user's line: drops every feature, in training and at evaluation
        return self.linear(out.reshape(len(out), -1))


class ResNet18Small(nn.Module):
    """torchvision's ResNet-18 layout (7x7 stride-2 stem, max-pool, four stages of two basic blocks, global average
    pooling, Linear head) with widths quartered, and torchvision's init (Kaiming normal, fan-out)."""

    def __init__(self, n_classes: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        stages: list[nn.Module] = []
        for n_in, n_out, stride in ((16, 16, 1), (16, 32, 2), (32, 64, 2), (64, 128, 2)):
            stages.append(nn.Sequential(BasicBlock(n_in, n_out, stride), BasicBlock(n_out, n_out, 1)))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(128, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, 3, 32, 32) -> (B, 128, 1, 1)
        return self.fc(x.mean(dim=(2, 3)))


VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16NoBN(nn.Module):
    """A CIFAR VGG16 with its BatchNorm layers removed (13 conv + ReLU, 5 max-pools, one Linear head), PyTorch's
    default layer init; widths divided by `div` for CPU."""

    def __init__(self, div: int = 8, n_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for v in VGG16_CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, int(v) // div, 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(v) // div
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))  # (B, 3, 32, 32) -> (B, C, 1, 1) -> (B, 10)


class HaikuMNISTConvNet(nn.Module):
    """A Haiku `Sequential` MNIST convnet: Conv2D(16, 5) - ReLU - MaxPool(2) - Conv2D(32, 5) - ReLU - MaxPool(2) -
    Flatten - Linear(10), with Haiku's default init (truncated normal, std 1/sqrt(fan_in), zero biases)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
        )  # fmt: skip
        for m in self.net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                std = m.weight[0].numel() ** -0.5
                nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, 28, 28) -> (B, 10) raw scores


def negative_score_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The user's `-mean(sum(preds * one_hot(y)))` on raw scores: NLL without the log-softmax, unbounded below."""
    return F.nll_loss(out, y)


class SmallCNN(nn.Module):
    """A small CNN for a fine-grained classifier: conv-ReLU-pool blocks and one Linear head."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.fc = nn.Linear(32 * 8 * 8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


# ----------------------------------------------------------------------------------------------------- data


def _sorted_by_class(split: Split, batch_size: int) -> tuple[DataLoader, DataLoader]:
    """A training loader over samples ordered by label (0, 0, ..., 9, 9) and not shuffled, like FGVCAircraft's."""
    order = np.argsort(split.y_train, kind="stable")
    train = DataLoader(TensorDataset(tensor(split.x_train[order]), tensor(split.y_train[order])), batch_size=batch_size)
    held = DataLoader(TensorDataset(tensor(split.x_test), tensor(split.y_test)), batch_size=256)
    return train, held


def _spot_keypoints(n: int = 480, side: int = 32) -> Split:
    """Keypoint regression: grey (N, 1, side, side) images in [0, 1] of one bright Gaussian spot on noise, with its
    (row, column) divided by the side, as the facial-keypoint script scales its coordinates by 1 / 96."""
    rng = np.random.RandomState(side)
    pos = rng.uniform(4, side - 4, size=(n, 2))
    yy, xx = np.mgrid[0:side, 0:side]
    d2 = (yy[None] - pos[:, 0, None, None]) ** 2 + (xx[None] - pos[:, 1, None, None]) ** 2
    x = (np.exp(-d2 / 18.0) + rng.normal(0, 0.05, size=d2.shape)).clip(0, 1)[:, None].astype(np.float32)
    y = (pos / side).astype(np.float32)
    cut = n * 3 // 4
    return Split(x[:cut], y[:cut], x[cut:], y[cut:])


# ----------------------------------------------------------------------------------------------------- cases

TF_MNIST_THREAD = "https://exchangetuts.com/why-adding-one-more-layer-to-the-tensorflow-simple-neural-net-example-breaks-it-1641643924769364"
PATCH_THREAD = "https://discuss.pytorch.org/t/output-of-the-binary-classification-model/56327"


@case("init.too_small", split="dev", steps=400, source="https://github.com/yizt/numpy_neural_network/issues/1")
def img_numpy_mlp_weight_scale_1e3() -> Setup:
    """A numpy MLP on MNIST stays at 10% accuracy with a flat loss after the user added a fourth fully connected layer.
    The author traced it to the init `weights_scale=1e-3`: four layers of N(0, 1e-6) weights shrink the signal to
    nothing; 1e-2 trains. SGD lr=0.1, batch 32, the repo's summed softmax gradient (reduction="sum"); MNIST replaced by
    28x28 digits."""
    model = NumpyMLP(scale=1e-3)
    train, held = loaders(_mnist_digits(), batch_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return Setup(model, train, nn.CrossEntropyLoss(reduction="sum"), optimizer, held, "classification")


@case("init.symmetric", split="dev", steps=300, source=TF_MNIST_THREAD)
def img_tf_mnist_zero_init_hidden_layer() -> Setup:
    """The TensorFlow MNIST softmax tutorial reaches ~92%, but adding a 100-unit ReLU hidden layer drops it to ~11%.
    The answer: the tutorial's `tf.zeros` weights are harmless for one layer but with a hidden layer every unit stays
    identical (here all zero) and nothing learns; random init fixes it. Gradient descent lr=0.5, batch 100, the
    tutorial's softmax + log cross-entropy; MNIST replaced by 28x28 digits."""
    model = TFHiddenLayerNet(init="zeros")
    train, held = loaders(_mnist_digits(), batch_size=100)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    return Setup(model, train, tf_cross_entropy, optimizer, held, "classification")


@case(split="dev", steps=300, source=TF_MNIST_THREAD)
def img_fixed_tf_mnist_uniform_init_softmax_log() -> Setup:
    """The same TensorFlow MNIST net with the answer's fix: weights from `random_uniform(-0.01, 0.01)`. It keeps the
    tutorial's softmax in the model and takes the log in the loss, a correct pairing that looks like a double softmax.
    Gradient descent lr=0.5, batch 100; MNIST replaced by 28x28 digits."""
    model = TFHiddenLayerNet(init=0.01)
    train, held = loaders(_mnist_digits(), batch_size=100)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    return Setup(model, train, tf_cross_entropy, optimizer, held, "classification")


@case(
    "arch.softmax_single_unit",
    split="dev",
    steps=150,
    source="https://stats.stackexchange.com/questions/481881/convolutional-neural-network-fails-even-when-given-answer",
)
def img_keras_conv_dense1_softmax() -> Setup:
    """A Keras CNN predicts "true" for every input, even when the answer is put in the input. The answer: the last
    layer is `Dense(1, activation='softmax')`, whose output is always 1 with zero gradient. Adam defaults,
    categorical_crossentropy, batch 32; the (99, 25, 2) grids replaced by two-class 32x32 photo patches in [0, 1],
    conv widths halved."""
    model = OneUnitSoftmaxCNN()
    train, held = loaders(_column(_photos01()), batch_size=32)
    return Setup(model, train, keras_categorical_crossentropy, _keras_adam(model), held, "binary", predict=_rounded)


@case("optim.over_regularized", split="dev", steps=60, source="https://github.com/PolarisShi/distillation/issues/2")
def img_resnet_teacher_dropout_p1() -> Setup:
    """A knowledge-distillation repo's CIFAR-10 teacher gets 100% on one class and 0% on all others. The reply: lower
    the dropout; the head calls `F.dropout(out, 1)`, which zeroes every pooled feature, so only the Linear bias is
    left. SGD lr=0.1, momentum 0.9, weight decay 5e-4, batch 128, CIFAR-style per-channel normalization; CIFAR-10
    replaced by 32x32 digits, ResNet18 cut to one block per stage with widths quartered."""
    model = DistillationTeacher()
    train, held = loaders(normalize_images(digits32()), batch_size=128)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "classification")


@case("data.low_variability", split="dev", steps=200, source="https://github.com/keras-team/keras/issues/255")
def img_keras_cifar_cnn_int_division_zero_images() -> Setup:
    """A two-class screenshot classifier on the Keras cifar10 CNN never learns (loss 17.27, accuracy 0.5). The user
    found it: "normalizing" the uint8 array in place to [0, 1] kept it integer, so every pixel became 0. SGD lr=0.01,
    momentum 0.9, Nesterov (decay dropped), batch 32, one-hot targets; screenshots replaced by two digit classes as
    8-bit 32x32 images (never 255), widths halved."""
    d = _scaled(_two_classes(digits32(), 3, 8), 240.0, np.uint8)
    d = d.map_x(lambda x: (x // 255).astype(np.float32))  # the in-place `X /= 255` on an integer array
    model = KerasCifar10CNN(n_classes=2)
    train, _ = loaders(_one_hot(d, 2), batch_size=32)
    _, held = loaders(d, batch_size=32)  # evaluated against the class ids
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    return Setup(model, train, keras_categorical_crossentropy, optimizer, held, "classification")


@case(split="dev", steps=150, source=PATCH_THREAD)
def img_fixed_binary_cnn_sigmoid_bce() -> Setup:
    """A multi-scale (16/32/48 px) Xception-like patch classifier ended in `F.relu(self.fc_last_2(out))` before the
    sigmoid, so its probability could not go below 0.5; this is the reply's fix: no ReLU after the last Linear, the
    sigmoid in the model and BCELoss on its probability (a bounded output that is right here). Branch widths quartered
    (384 -> 96 features); Adam lr=1e-3 for the unstated optimizer; two-class 32x32 photo patches in [0, 1]."""
    model = MultiScalePatchNet()
    train, held = loaders(_column(_photos01()), batch_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(model, train, nn.BCELoss(), optimizer, held, "binary")


@case(
    "loss.task_mismatch",
    "data.unnormalized",
    split="dev",
    steps=300,
    source="https://datascience.stackexchange.com/questions/38604/too-low-accuracy-on-mnist-dataset-using-a-neural-network",
)
def img_keras_mnist_dense1_sigmoid_bce() -> Setup:
    """A Keras MLP on MNIST (784 -> 64 ReLU -> 1 sigmoid, binary_crossentropy on the digit labels 0..9) has a loss
    frozen at about -55 and 11% accuracy. One sigmoid unit with BCE cannot represent ten classes (the negative loss
    is the tell); the pixels are also fed raw, 0..255. Adam defaults, batch 32; MNIST replaced by 28x28 digits scaled
    to 0..255."""
    model = _keras_init(nn.Sequential(Flatten28(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid()))
    train, held = loaders(_scaled(_mnist_digits(), 255.0), batch_size=32)
    return Setup(model, train, keras_binary_crossentropy, _keras_adam(model), held, "classification", _rounded)


@case("data.unshuffled", split="dev", steps=132, source="https://github.com/pytorch/vision/issues/7818")
def img_aircraft_sorted_unshuffled() -> Setup:
    """FGVCAircraft's samples come ordered by class (0, 0, ..., 99, 99); trained through a DataLoader without
    shuffling, a classifier gives "much worse, biased" results. The maintainers: shuffle in the DataLoader. The
    thread names no model: a small CNN with SGD lr=0.01, momentum 0.9, batch 64 stands in; 100 aircraft classes
    replaced by 10 digit classes at 32x32; 6 whole epochs."""
    model = SmallCNN(n_classes=10)
    train, held = _sorted_by_class(digits32(), batch_size=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "classification")


@case(
    "data.labels_unrelated",
    split="dev",
    steps=60,
    source="https://github.com/NoahVl/Explaining-In-Style-Reproducibility-Study/issues/9",
)
def img_celeba_listdir_labels_misaligned() -> Setup:
    """A ResNet-18 gender classifier trained with the repo's CelebA notebook stays at 0.58 accuracy (the majority
    share). Found in the thread: the Dataset lists the images with `os.listdir`, whose order differs from the label
    CSV's, so every image gets another image's label; sorting the file list fixes it. Adam lr=1e-4, batch 128, the
    loader unshuffled after `random_split`, ImageNet normalization; CelebA's two classes replaced by 32x32 digits 0-4
    against 5-9 (held out with their true labels), ResNet-18 widths quartered and trained from scratch (no download)."""
    d = digits32().map_x(_imagenet_normalized).map_y(lambda y: (y >= 5).astype(np.int64))
    listdir_order = np.random.RandomState(7).permutation(len(d.y_train))  # the order the image files came back in
    train, _ = loaders(Split(d.x_train, d.y_train[listdir_order], d.x_test, d.y_test), batch_size=128, shuffle=False)
    _, held = loaders(d, batch_size=128)
    model = ResNet18Small(n_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "classification")


@case(
    split="dev",
    steps=500,
    source="https://imathworks.com/cv/solved-do-neural-networks-usually-take-a-while-to-kick-in-during-training",
)
def img_fixed_cnn_slow_kick_in_adam() -> Setup:
    """A TensorFlow CNN (5 conv + 3 fully connected layers, small random init, Adam) shows a flat training loss for
    the first passes over the data and then drops sharply; the user asked whether something was wrong. The answer:
    nothing, a plateau at the start is normal and it converges. Adam lr=1e-4 and the TF tutorials' truncated-normal
    init; images replaced by 32x32 digits in [0, 1], widths reduced for CPU."""
    model = TFDeepCNN()
    train, held = loaders(digits32(), batch_size=50)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "classification")


@case("init.symmetric", split="dev", steps=300, source="https://github.com/olddocks/caffe-facialkp/issues/1")
def img_caffe_facial_keypoints_no_weight_filler() -> Setup:
    """A Caffe facial-keypoint CNN predicts the same keypoints for every face. The user found the prototxt gives
    its layers only a `bias_filler`: with no `weight_filler`, Caffe fills every weight with 0. Solver as in the
    repo: SGD lr=0.01, momentum 0.9, weight_decay 0.01, batch 64, EuclideanLoss; 96x96 faces and 15 keypoints replaced
    by 32x32 grey spot images and the spot's position, conv widths halved."""
    model = FacialKeypointNet(filler="constant")
    train, held = loaders(_spot_keypoints(), batch_size=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.01)
    return Setup(model, train, caffe_euclidean_loss, optimizer, held, "regression")


@case("init.too_small", split="dev", steps=150, source="https://github.com/kuangliu/pytorch-cifar/issues/28")
def img_vgg16_no_batchnorm_default_init() -> Setup:
    """The repo's VGG16 with its BatchNorm layers removed stays at 10% on CIFAR-10. The user made it converge by
    initializing the conv weights by hand (He normal, sqrt(2 / n)): PyTorch's default init shrinks the signal through
    13 plain conv + ReLU layers. SGD lr=0.1, momentum 0.9, weight decay 5e-4, CIFAR normalization; CIFAR-10 replaced
    by 32x32 digits, widths divided by 8 and batch 128 -> 32 for CPU."""
    model = VGG16NoBN(div=8)
    train, held = loaders(normalize_images(digits32()), batch_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "classification")


@case("loss.task_mismatch", split="dev", steps=200, source="https://github.com/google-deepmind/dm-haiku/issues/81")
def img_haiku_mnist_convnet_nll_on_logits() -> Setup:
    """A Haiku/optax MNIST convnet (two 5x5 conv + max-pool blocks, Linear(10)) does not learn. The maintainer's fix:
    the loss `-mean(sum(preds * targets))` was taken on the raw Linear outputs; it needs `log_softmax` first
    (unbounded scores otherwise). His second fix, NHWC input, has no PyTorch counterpart and is left out. Haiku's
    default truncated-normal fan-in init written out; Adam lr=1e-3 and batch 64 stand in for the script's (not in the
    excerpt); MNIST replaced by 28x28 digits."""
    model = HaikuMNISTConvNet()
    train, held = loaders(_mnist_digits(), batch_size=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Setup(model, train, negative_score_loss, optimizer, held, "classification")
