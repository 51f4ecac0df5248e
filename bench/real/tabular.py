"""Tabular and "head" programs rebuilt from resolved public threads: one-unit binary heads, multi-label and
multi-target outputs, regression on raw scales, and models that return a list of per-head logits.

Each case keeps the thread's architecture, loss, optimizer and hyperparameters; Keras programs are translated layer
by layer with Keras defaults (glorot_uniform kernels, zero biases, Adam/RMSprop eps=1e-7, binary_crossentropy that
clips probabilities to [1e-7, 1 - 1e-7]). The threads' own data are replaced by seeded stand-ins of the same shape
and task, generated here or taken from `bench.real.standins`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench.cases.registry import Setup, case
from bench.data import Split, _split, tensor
from bench.real.standins import loaders, tabular_regression

KERAS_EPS = 1e-7  # Keras' backend epsilon: Adam/RMSprop eps and the clip of binary_crossentropy


# ---------------------------------------------------------------------------------------------- Keras translation


def glorot_init(model: nn.Module) -> nn.Module:
    """Keras Dense/Conv1D defaults on every Linear and Conv1d: glorot_uniform weights and zero biases."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def keras_binary_crossentropy(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras' binary_crossentropy on probabilities: clip to [eps, 1 - eps], then the mean log loss."""
    prob = prob.clamp(KERAS_EPS, 1.0 - KERAS_EPS)
    return F.binary_cross_entropy(prob, target.reshape(prob.shape).float())


def keras_adam(model: nn.Module, lr: float = 1e-3, eps: float = KERAS_EPS) -> torch.optim.Optimizer:
    """keras.optimizers.Adam with its defaults (lr=1e-3, epsilon=1e-7; Keras 1 used epsilon=1e-8)."""
    return torch.optim.Adam(model.parameters(), lr=lr, eps=eps)


def keras_rmsprop(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    """keras.optimizers.RMSprop with its defaults (lr=1e-3, rho=0.9, epsilon=1e-7)."""
    return torch.optim.RMSprop(model.parameters(), lr=lr, alpha=0.9, eps=KERAS_EPS)


def threshold_half(out: torch.Tensor) -> torch.Tensor:
    """Class 1 where a probability output is above 0.5, as Keras' `predict(x) > .5` reads it."""
    return (out > 0.5).long()


# ---------------------------------------------------------------------------------------------- offline stand-ins


@cache
def majority_bits(n: int = 300) -> Split:
    """Three 0/1 features per case and the label "at least two of them are 1" (the thread's y = sum(x) > 1)."""
    rng = np.random.RandomState(3)
    x = (rng.random_sample((n, 3)) < [0.85, 0.45, 0.35]).astype(np.float32)
    return _split(x, (x.sum(1) > 1).astype(np.float32))


@cache
def first_bit_copy(n: int = 400) -> Split:
    """Rows [x0, x1, 1] of 0/1 bits with the label y = x0, the rule behind the thread's four rows."""
    rng = np.random.RandomState(4)
    bits = rng.randint(0, 2, size=(n, 2)).astype(np.float32)
    x = np.concatenate([bits, np.ones((n, 1), np.float32)], axis=1)
    return _split(x, bits[:, 0].copy())


@cache
def pooled_features(n: int = 2400, dim: int = 384) -> Split:
    """CNN-style pooled features (non-negative, (N, dim)) with a 0/1 label that a small head can read off them."""
    rng = np.random.RandomState(dim)
    x = np.maximum(rng.normal(size=(n, dim)), 0).astype(np.float32)
    w = np.zeros(dim)
    w[rng.choice(dim, size=16, replace=False)] = rng.normal(size=16)  # the label lives in 16 of the channels
    score = (x - x.mean(0)) @ w / 4.0 + 0.1 * rng.normal(size=n)
    return _split(x, (score > 0).astype(np.float32))


@cache
def cube_curve(n: int = 3999) -> Split:
    """The thread's curve: inputs 1..n and targets x**3 (up to 6.4e10), both (N, 1)."""
    x = np.arange(1, n + 1, dtype=np.float64)[:, None]
    return _split(x.astype(np.float32), (x**3).astype(np.float32), stratify=False)


@cache
def noisy_plane(n: int = 4000, scale: float = 100.0) -> Split:
    """Two standard-normal inputs times `scale` and y = 5 x1 + 3 x2 + N(0, 1) as a 1-D target, as in the thread."""
    rng = np.random.RandomState(50431)
    x = rng.normal(size=(n, 2)) * scale
    y = 5 * x[:, 0] + 3 * x[:, 1] + rng.normal(size=n)
    return _split(x.astype(np.float32), y.astype(np.float32), stratify=False)


@cache
def sparse_multilabel(n: int = 3000, features: int = 32, labels: int = 100, active: float = 0.02) -> Split:
    """Multi-label with many rare labels: each of `labels` 0/1 targets is on for about `active` of the rows, when a
    noisy linear score of the features passes its quantile (about two labels on per row at the defaults)."""
    rng = np.random.RandomState(labels)
    x = rng.normal(size=(n, features))
    score = x @ rng.normal(size=(features, labels)) / np.sqrt(features) + 0.5 * rng.normal(size=(n, labels))
    y = score > np.quantile(score, 1 - active, axis=0)
    return _split(x.astype(np.float32), y.astype(np.float32), stratify=False)


@cache
def ohlc_windows(n: int = 2400, window: int = 10) -> Split:
    """(N, window, 4) windows of a standardized open/high/low/close random walk; label 1 when the close at the end
    of the window is above the close at its start (the trend the window shows)."""
    rng = np.random.RandomState(window)
    close = np.cumsum(rng.normal(size=n + window)) + 500.0
    spread = np.abs(rng.normal(0, 0.5, size=(n + window, 2)))
    prices = np.stack([close + rng.normal(0, 0.2, n + window), close + spread[:, 0], close - spread[:, 1], close], 1)
    prices = (prices - prices.mean()) / prices.std()
    x = np.stack([prices[i : i + window] for i in range(n)]).astype(np.float32)
    y = (x[:, -1, 3] > x[:, 0, 3]).astype(np.float32)
    return _split(x, y)


@cache
def wide_range_targets() -> Split:
    """Two regression targets of very different magnitude from the same features: one around 3e4, one around 3."""
    d = tabular_regression(features=8, targets=2)
    spread = np.array([1e4, 1.0], dtype=np.float32)
    return d.map_y(lambda y: (y * spread).astype(np.float32))


def standardized(d: Split, *, targets: bool) -> Split:
    """Inputs (and targets too when asked) standardized with the train part's mean and std, as the answer did."""
    x_mean, x_std = d.x_train.mean(0), d.x_train.std(0)
    d = d.map_x(lambda x: ((x - x_mean) / x_std).astype(np.float32))
    if targets:
        y_mean, y_std = d.y_train.mean(0), d.y_train.std(0)
        d = d.map_y(lambda y: ((y - y_mean) / y_std).astype(np.float32))
    return d


class WholeTensors(TensorDataset):
    """A TensorDataset that hands out a batch by indexing its tensors once, not row by row (full-batch steps over
    thousands of rows stay cheap)."""

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices)
        return [t[index] for t in self.tensors]


def setup(
    d: Split,
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    task: str,
    batch_size: int | None = None,
    predict: Callable[[Any], torch.Tensor] | None = None,
) -> Setup:
    """The case's Setup over a split: a seeded shuffled training loader (the whole training part per step when
    `batch_size` is None, as full-batch threads train) and the held-out part in order."""
    train, held = loaders(d, batch_size or len(d.x_train))
    if batch_size is None:
        data = WholeTensors(tensor(d.x_train), tensor(d.y_train))
        train = DataLoader(data, batch_size=len(data), collate_fn=tuple)
    return Setup(model, train, loss_fn, optimizer, held, task, predict)


# ---------------------------------------------------------------------------------------------- models


class ReluHeadClassifier(nn.Module):
    """The thread's binary head on pooled CNN features: Linear(384, 64) -> ReLU -> Linear(64, 1) -> ReLU; the user
    applies torch.sigmoid to the returned output outside the model, before the criterion."""

    def __init__(self) -> None:
        super().__init__()
        self.fc_last_1 = nn.Linear(384, 64)
        self.fc_last_2 = nn.Linear(64, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.fc_last_1(features))
        return F.relu(self.fc_last_2(out))


class SigmoidHeadClassifier(nn.Module):
    """The answer's head: Linear(384, 64) -> ReLU -> Linear(64, 1) -> sigmoid inside the model, for BCELoss."""

    def __init__(self) -> None:
        super().__init__()
        self.fc_last_1 = nn.Linear(384, 64)
        self.fc_last_2 = nn.Linear(64, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc_last_2(F.relu(self.fc_last_1(features))))


class CubeNet(nn.Module):
    """The thread's regressor: Linear(1, 50) -> ReLU -> Linear(50, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(1, 50)
        self.fc2 = nn.Linear(50, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class SqueezeNotKeptRegressor(nn.Module):
    """The thread's linear regression, Linear(2, 1, bias=False), whose forward calls `x.squeeze()` without keeping
    the result, so it returns [N, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Linear(2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(x)
        x.squeeze()  # the thread's line: squeeze() returns a new tensor, x keeps its [N, 1] shape
        return x


class SumNet(nn.Sequential):
    """The thread's Seq(Lin(3, 1, bias=False)) for learning y = x1 + x2 + x3, started from zero weights [1, 3]."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(3, 1, bias=False))
        nn.init.zeros_(self[0].weight)


class RegressionHead(nn.Module):
    """FARM's RegressionHead([768, 1]): one Linear layer whose per-sample loss squeezes the logits before MSE."""

    def __init__(self, layer_dims: tuple[int, int] = (768, 1)) -> None:
        super().__init__()
        self.feed_forward = nn.Linear(*layer_dims)
        self.loss_fct = nn.MSELoss(reduction="none")

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(pooled)

    def logits_to_loss(self, logits: torch.Tensor, label_ids: torch.Tensor) -> torch.Tensor:
        """Per-sample loss as FARM computed it: logits [N, 1] squeezed to [N] against labels [N, 1]."""
        return self.loss_fct(logits.squeeze(), label_ids.float())  # [N] against [N, 1]: an [N, N] loss


class AdaptiveModel(nn.Module):
    """FARM's AdaptiveModel reduced to its head: the pooled sequence vector (here a stand-in feature vector in place
    of DistilBERT's output) goes through embeds_dropout and every prediction head; forward returns one logits tensor
    per head, as a list."""

    def __init__(self, head: RegressionHead, embeds_dropout_prob: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(embeds_dropout_prob)
        self.prediction_heads = nn.ModuleList([head])

    def forward(self, pooled: torch.Tensor) -> list[torch.Tensor]:
        pooled = self.dropout(pooled)
        return [head(pooled) for head in self.prediction_heads]

    def logits_to_loss(self, logits: list[torch.Tensor], label_ids: torch.Tensor) -> torch.Tensor:
        """The trainer's loss: the head's per-sample losses, averaged."""
        return self.prediction_heads[0].logits_to_loss(logits[0], label_ids).mean()


class KerasDense(nn.Sequential):
    """A Keras Sequential of Dense layers translated to PyTorch: Linear layers with an activation after each (the
    last one's activation given separately), glorot_uniform weights and zero biases."""

    def __init__(self, sizes: list[int], hidden: type[nn.Module] | None, output: nn.Module | None) -> None:
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2 and hidden is not None:
                layers.append(hidden())
        if output is not None:
            layers.append(output)
        super().__init__(*layers)
        glorot_init(self)


class KerasConv1dClassifier(nn.Module):
    """The thread's Keras CNN on (10, 4) price windows: two Conv1D(filters, 4, same) -> BatchNorm -> LeakyReLU ->
    Dropout(0.2) blocks, Flatten, Dense(64) -> BatchNorm -> LeakyReLU, Dense(1) and a softmax activation."""

    def __init__(self, window: int = 10, channels: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(channels, 16, 4, padding="same"),
            nn.BatchNorm1d(16, eps=1e-3, momentum=0.01),  # Keras BatchNormalization: epsilon=1e-3, momentum=0.99
            nn.LeakyReLU(0.3),  # Keras LeakyReLU default alpha=0.3
            nn.Dropout(0.2),
            nn.Conv1d(16, 8, 4, padding="same"),
            nn.BatchNorm1d(8, eps=1e-3, momentum=0.01),
            nn.LeakyReLU(0.3),
            nn.Dropout(0.2),
        )
        self.dense = nn.Sequential(
            nn.Linear(8 * window, 64), nn.BatchNorm1d(64, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.3)
        )
        self.out = nn.Linear(64, 1)
        glorot_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.transpose(1, 2))  # Keras (N, steps, channels) -> PyTorch (N, channels, steps)
        h = self.dense(h.transpose(1, 2).flatten(1))  # Keras Flatten runs over (steps, channels)
        return torch.softmax(self.out(h), dim=-1)  # Activation('softmax') over the single unit


# ---------------------------------------------------------------------------------------------- cases


@case(
    "arch.output_activation",
    steps=400,
    source="https://discuss.pytorch.org/t/output-of-the-binary-classification-model/56327",
)
def tab_binary_relu_then_sigmoid_outside() -> Setup:
    """A binary head ends in F.relu(fc_last_2(out)) and the user applies torch.sigmoid outside, before the criterion
    (BCELoss here; the thread only shows `criterion`): probabilities lie in [0.5, 1), every sample reads as class 1
    while the loss falls. The reply: no ReLU on the last layer, sigmoid instead. The Xception-like CNN trunk is
    replaced by 384-d pooled features; the thread shows no optimizer or batch size (Adam 1e-3, 64)."""
    d = pooled_features()
    model = ReluHeadClassifier()
    bce = nn.BCELoss()

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return bce(torch.sigmoid(out), y.reshape(out.shape))

    def predict(out: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(out) >= 0.5).long()  # the user's reading: [0.5, 1] is the positive class

    return setup(d, model, loss_fn, torch.optim.Adam(model.parameters(), lr=1e-3), "binary", 64, predict)


@case(
    "data.unnormalized",
    "data.target_scale",
    steps=600,
    source="https://discuss.pytorch.org/t/neural-network-could-not-learn-on-this-type-of-data-why/96648/5",
)
def tab_cube_raw_inputs_and_targets() -> Setup:
    """Linear(1, 50)-ReLU-Linear(50, 1) fitted to y = x**3 for x = 1..3999 on raw numbers (targets up to 6.4e10)
    with Adam lr=1e-3 and full-batch MSE: the loss never comes down. The answer normalized inputs and targets.
    The thread's own curve is regenerated; one full batch of the training part per step, as in the thread."""
    d = cube_curve()
    model = CubeNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return setup(d, model, nn.MSELoss(), optimizer, "regression")


@case(
    "arch.softmax_single_unit",
    split="dev",
    steps=600,
    source="https://stats.stackexchange.com/revisions/2bda6552-783b-4fb7-ba2b-a03d2266e69b/view-source",
)
def tab_keras_softmax_one_unit() -> Setup:
    """Keras Dense(10, relu) -> Dense(1, softmax) with binary_crossentropy and RMSprop on three 0/1 features: the
    model predicts 1 for everything. A commenter found it: softmax over one unit is always 1; sigmoid fixes it.
    The thread's 100 hand-written cases become 300 seeded ones; batch = n_train // 5 + 1 as in the thread."""
    d = majority_bits()
    model = KerasDense([3, 10, 1], nn.ReLU, nn.Softmax(dim=1))
    batch = len(d.x_train) // 5 + 1
    return setup(d, model, keras_binary_crossentropy, keras_rmsprop(model), "binary", batch, threshold_half)


@case(
    steps=600,
    source="https://discuss.pytorch.org/t/output-of-the-model-depends-on-the-shape-of-the-weights-tensor/148155",
)
def tab_fixed_sum_target_unsqueezed() -> Setup:
    """Lin(3, 1, bias=False) from zero weights [1, 3] learning y = x1 + x2 + x3 with SGD lr=0.1, full batch: the
    user saw the loss stuck near 0.5 because [1024, 1] outputs met [1024] targets; the answer's y.unsqueeze(1)
    fixes it. Same data recipe (uniform inputs); ReduceLROnPlateau dropped (the bench loop has no scheduler)."""
    rng = np.random.RandomState(148155)
    x = rng.random_sample((1280, 3)).astype(np.float32)
    d = _split(x, x.sum(1, keepdims=True), stratify=False)  # the fix: targets [N, 1] like the output
    model = SumNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return setup(d, model, nn.MSELoss(), optimizer, "regression")


@case(
    "data.class_imbalance",
    steps=600,
    source="https://stackoverflow.com/questions/42158866/neural-network-for-multi-label-classification-with-large-number-of-classes-outpu",
)
def tab_multilabel_sparse_all_zeros() -> Setup:
    """Keras multi-label net with sigmoid outputs and binary_crossentropy on labels that are 99.8% zeros: it ends up
    outputting only zeros. The answer: weight the positives (weighted_cross_entropy_with_logits, pos_weight).
    The thread gives no layers: a Keras-default Dense(256, relu) -> Dense(labels, sigmoid) with Adam; 1000 labels
    with ~2 on per row are scaled to 100 labels on 2% of rows, over 32 seeded Gaussian features."""
    d = sparse_multilabel()
    model = KerasDense([32, 256, 100], nn.ReLU, nn.Sigmoid())
    return setup(d, model, keras_binary_crossentropy, keras_adam(model), "multilabel", 32, threshold_half)


@case("loss.shape_broadcast", split="dev", steps=600, source="https://github.com/deepset-ai/FARM/issues/229")
def tab_head_squeezed_logits_broadcast() -> Setup:
    """FARM regression (labels 0..16) with RegressionHead([768, 1]): the head squeezed its logits to [32] while the
    labels stayed [32, 1], so MSELoss broadcast to [32, 32] (the warning in the report). The maintainer's fix
    stopped the squeeze. DistilBERT's pooled output is replaced by 768-d stand-in features; the model returns FARM's
    list of per-head logits. The user changed the LR (not given): AdamW at 1e-3 for the head."""
    d = tabular_regression(features=768, scale=2.0)  # targets about 0..16 as in the report
    model = AdaptiveModel(RegressionHead())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return setup(d, model, model.logits_to_loss, optimizer, "regression", 32)


@case(steps=400, source="https://discuss.pytorch.org/t/output-of-the-binary-classification-model/56327")
def tab_fixed_sigmoid_inside_bce() -> Setup:
    """The same head after the thread's fix: no ReLU on fc_last_2, torch.sigmoid inside forward and BCELoss on the
    probabilities, read at 0.5. The CNN trunk is again replaced by 384-d pooled features; Adam lr=1e-3."""
    d = pooled_features()
    model = SigmoidHeadClassifier()
    bce = nn.BCELoss()

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return bce(out, y.reshape(out.shape))

    return setup(d, model, loss_fn, torch.optim.Adam(model.parameters(), lr=1e-3), "binary", 64, threshold_half)


@case(
    "arch.output_activation",
    steps=600,
    source="https://panteravb.com/q/why-does-the-sigmoid-activation-function-work-but-relu-does-not",
)
def tab_keras_relu_output_binary() -> Setup:
    """Keras Dense(1, input_dim=3, activation='relu') trained with binary_crossentropy and Adam, batch 4: accuracy
    never passes 50% while the sigmoid version converges at once. The answer: ReLU is for hidden layers, a binary
    output needs a probability (sigmoid). The thread's four rows [x0, x1, 1] -> x0 become 400 seeded ones."""
    d = first_bit_copy()
    model = KerasDense([3, 1], None, nn.ReLU())
    return setup(d, model, keras_binary_crossentropy, keras_adam(model), "binary", 4, threshold_half)


@case(
    split="dev",
    steps=800,
    source="https://discuss.pytorch.org/t/neural-network-could-not-learn-on-this-type-of-data-why/96648/5",
)
def tab_fixed_cube_normalized() -> Setup:
    """The answer's version of the cube fit: inputs and targets standardized (with the train part's statistics),
    the same Linear(1, 50)-ReLU-Linear(50, 1), Adam lr=1e-3 and full-batch MSE, judged on normalized targets."""
    d = standardized(cube_curve(), targets=True)
    model = CubeNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return setup(d, model, nn.MSELoss(), optimizer, "regression")


@case(
    "data.target_scale",
    steps=600,
    source="https://community.deeplearning.ai/t/output-normalisation-in-multi-output-regression-nn/243077",
)
def tab_multitarget_unscaled_outputs() -> Setup:
    """A multi-output regression net whose targets span very different ranges (here one near 3e4, one near 3): the
    net chases the largest output and ignores the small one. The mentors' answer: normalize the outputs, each with
    its own scheme. The thread has no code: a Keras-default Dense(64, relu) -> Dense(64, relu) -> Dense(2), MSE,
    Adam, batch 32, on the 8-feature tabular stand-in with its two targets rescaled by 1e4 and 1."""
    d = wide_range_targets()
    model = KerasDense([8, 64, 64, 2], nn.ReLU, None)
    return setup(d, model, nn.MSELoss(), keras_adam(model), "regression", 32)


@case("arch.softmax_single_unit", steps=300, source="https://geek-questions.imtqy.com/articles/1270335/index.html")
def tab_keras_conv1d_softmax_one_unit() -> Setup:
    """A Keras Conv1D binary classifier on standardized (10, 4) price windows ends in Dense(1) + Activation('softmax')
    with binary_crossentropy and Adam, batch 128: every prediction is 1. The answer: softmax normalizes over the
    outputs, so a one-neuron softmax is always 1. Stand-in: a seeded OHLC random walk, standardized, labelled by
    the window's trend; ReduceLROnPlateau dropped (the bench loop has no scheduler)."""
    d = ohlc_windows()
    model = KerasConv1dClassifier()
    optimizer = keras_adam(model, eps=1e-8)  # a Keras 1 program (nb_filter=, border_mode=): Adam's epsilon was 1e-8
    return setup(d, model, keras_binary_crossentropy, optimizer, "binary", 128, threshold_half)


@case(
    "loss.shape_broadcast",
    split="dev",
    steps=300,
    source="https://discuss.pytorch.org/t/why-the-model-fail-to-converge-without-a-manul-weight-initialization/50431",
)
def tab_regression_squeeze_not_assigned() -> Setup:
    """Linear(2, 1, bias=False) fitting y = 5 x1 + 3 x2 (inputs scaled by 100) with RMSprop and MSELoss, batch 100:
    the loss oscillates in the hundreds of thousands unless the weight is set by hand to a 1-D [2, 3]. The forward's
    `x.squeeze()` is never assigned, so [100, 1] outputs meet [100] targets and MSELoss broadcasts; a 1-D weight
    happened to give [100] outputs. The thread's data recipe; its RMSprop LR is cut off, so the default 0.01."""
    d = noisy_plane()
    model = SqueezeNotKeptRegressor()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01)
    return setup(d, model, nn.MSELoss(), optimizer, "regression", 100)


@case(steps=800, source="https://stats.stackexchange.com/revisions/2bda6552-783b-4fb7-ba2b-a03d2266e69b/view-source")
def tab_fixed_keras_sigmoid_one_unit() -> Setup:
    """The thread's fixed program: Dense(10, relu) -> Dense(1, sigmoid), binary_crossentropy, RMSprop, batch
    n_train // 5 + 1, predictions thresholded at 0.5 (the second bug the poster found). 300 seeded cases."""
    d = majority_bits()
    model = KerasDense([3, 10, 1], nn.ReLU, nn.Sigmoid())
    batch = len(d.x_train) // 5 + 1
    return setup(d, model, keras_binary_crossentropy, keras_rmsprop(model), "binary", batch, threshold_half)


@case(steps=800, source="https://panteravb.com/q/why-does-the-sigmoid-activation-function-work-but-relu-does-not")
def tab_fixed_keras_sigmoid_output() -> Setup:
    """The same one-unit Keras model with the activation the answer recommends for a binary output, sigmoid:
    Dense(1, input_dim=3, activation='sigmoid'), binary_crossentropy, Adam, batch 4, read at 0.5."""
    d = first_bit_copy()
    model = KerasDense([3, 1], None, nn.Sigmoid())
    return setup(d, model, keras_binary_crossentropy, keras_adam(model), "binary", 4, threshold_half)
