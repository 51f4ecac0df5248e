"""Healthy setups, many of them look-alikes of a bug (softmax + NLLLoss, a frozen backbone...): no finding is right."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bench.cases.registry import Setup, case, on_split
from bench.data import (
    breast_cancer,
    diabetes,
    digits,
    digits32,
    iris,
    normalize_images,
    photos,
    standardize,
    tensor,
    wine,
)
from bench.models import ConvNet, RowRNN, TinyResNet, mlp


@case(steps=200)
def healthy_cnn_adam() -> Setup:
    """A CIFAR-size CNN on normalized 32x32 digits, Adam lr=1e-3, batch 64."""
    d = normalize_images(digits32())
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case(steps=300)
def healthy_log_softmax_nll() -> Setup:
    """An MLP ending in LogSoftmax trained with NLLLoss: the right pairing, not a double softmax."""
    d = standardize(digits())
    model = nn.Sequential(mlp([64, 128, 10]), nn.LogSoftmax(dim=1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.NLLLoss(), optimizer, "classification", batch_size=32)


@case(steps=300)
def healthy_sigmoid_bce() -> Setup:
    """Breast cancer, an MLP ending in Sigmoid trained with BCELoss on float targets: a bounded output that fits."""
    d = standardize(breast_cancer()).map_y(lambda y: y.astype("float32")[:, None])
    model = nn.Sequential(mlp([30, 32, 1]), nn.Sigmoid())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.BCELoss(), optimizer, "binary", batch_size=32)


@case(steps=200)
def healthy_batchnorm_cnn_sgd_momentum() -> Setup:
    """A BatchNorm CNN with batch 128 and SGD lr=0.05, momentum 0.9: a sane LR with momentum."""
    d = normalize_images(digits32())
    model = ConvNet(batch_norm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=128)


@case(steps=300)
def healthy_wine_sgd_momentum() -> Setup:
    """Standardized wine features, an MLP with SGD lr=0.01 and momentum 0.9."""
    d = standardize(wine())
    model = mlp([13, 32, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case(steps=150)
def healthy_frozen_backbone() -> Setup:
    """A deliberately frozen backbone (requires_grad=False) with a trainable head: fine-tuning."""
    d = normalize_images(digits32())
    model = ConvNet()
    for p in model.features.parameters():
        p.requires_grad = False
    optimizer = torch.optim.Adam(model.fc.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case(steps=400)
def healthy_dropout_half() -> Setup:
    """An MLP with dropout 0.5 after each hidden layer: strong but ordinary regularization."""
    d = standardize(digits())
    model = mlp([64, 256, 256, 10], dropout=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case(steps=200)
def healthy_label_smoothing() -> Setup:
    """CrossEntropyLoss with label_smoothing=0.1: the loss floor sits above 0 on purpose."""
    d = normalize_images(digits32())
    model = ConvNet(widths=(8, 16, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    return on_split(d, model, nn.CrossEntropyLoss(label_smoothing=0.1), optimizer, "classification")


@case(steps=200)
def healthy_mild_imbalance() -> Setup:
    """Breast cancer as it comes (63% benign), two logits and CrossEntropyLoss: mild imbalance that learns."""
    d = standardize(breast_cancer())
    model = mlp([30, 16, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary", batch_size=32)


@case(steps=150)
def healthy_standardized_regression() -> Setup:
    """Diabetes with standardized features and targets, and a [N, 1] target for the [N, 1] output."""
    d = standardize(diabetes())
    mean, std = d.y_train.mean(), d.y_train.std()
    d = d.map_y(lambda y: ((y - mean) / std)[:, None])
    model = mlp([10, 32, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


@case(steps=120)
def healthy_small_resnet() -> Setup:
    """A small ResNet on real photo patches (which photo), SGD with momentum and weight decay 5e-4."""
    d = normalize_images(photos().map_x(lambda x: x.astype("float32") / 255))
    model = TinyResNet(n_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary")


class DictDigits(Dataset):
    """A dataset that returns {"image": x, "label": y} like many image-folder datasets do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[idx], "label": self.labels[idx]}


@case(steps=200, split="holdout")
def healthy_dict_batches() -> Setup:
    """Dict batches {"image": x, "label": y} from a custom Dataset, a CNN with Adam."""
    d = normalize_images(digits32())
    train = DictDigits(tensor(d.x_train), tensor(d.y_train))
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    return Setup(
        model,
        DataLoader(train, batch_size=64, shuffle=True, generator=generator),
        nn.CrossEntropyLoss(),
        optimizer,
        DataLoader(DictDigits(tensor(d.x_test), tensor(d.y_test)), batch_size=256),
        "classification",
    )


@case(steps=300)
def healthy_adamw_default_decay() -> Setup:
    """Iris with AdamW and its default weight_decay=0.01: weight decay that does not over-regularize."""
    d = standardize(iris())
    model = mlp([4, 32, 3])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=16)


@case(steps=300, split="holdout")
def healthy_deep_batchnorm_mlp() -> Setup:
    """A deep-ish (8 Linear layers) MLP with BatchNorm1d, SGD with momentum, batch 64."""
    d = standardize(digits())
    model = mlp([64] + [128] * 7 + [10], batch_norm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case(steps=300, split="holdout")
def healthy_row_rnn() -> Setup:
    """A GRU reading 8x8 digits row by row, with the batch correctly transposed to sequence-first."""
    d = standardize(digits()).map_x(lambda x: x.reshape(-1, 8, 8))
    model = RowRNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification")


@case(steps=150, split="holdout")
def healthy_tanh_bounded_regression() -> Setup:
    """A tanh output on targets scaled into [-0.9, 0.9]: a bounded output whose range covers the targets."""
    d = standardize(diabetes())
    low, high = d.y_train.min(), d.y_train.max()
    d = d.map_y(lambda y: (1.8 * (y - low) / (high - low) - 0.9).clip(-1, 1)[:, None])
    model = nn.Sequential(mlp([10, 32, 1]), nn.Tanh())
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    return on_split(d, model, nn.MSELoss(), optimizer, "regression", batch_size=32)


@case(steps=200)
def healthy_photo_cnn_sgd() -> Setup:
    """Real photo patches, which photo they come from; a CNN with plain SGD lr=0.01 and momentum."""
    d = normalize_images(photos().map_x(lambda x: x.astype("float32") / 255))
    model = ConvNet(n_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary")


@case(steps=300)
def healthy_functional_log_softmax() -> Setup:
    """F.log_softmax in forward followed by F.nll_loss in a lambda: a softmax in forward that is not doubled."""
    d = standardize(wine())

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = mlp([13, 16, 3])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.log_softmax(self.body(x), dim=1)

    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    return on_split(d, model, lambda out, y: F.nll_loss(out, y), optimizer, "classification", batch_size=16)
