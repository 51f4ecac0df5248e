"""Held-out real programs outside vision, rebuilt from resolved public threads: raw-scale binary tabular inputs, a
raw-scale polynomial fit, multi-label heads, 1-d conv and Transformer regressors whose (N, 1) outputs meet (N,)
targets, and a BiLSTM regressor with a ReLU on its output.

Each case keeps the thread's architecture, loss, optimizer and hyperparameters on seeded offline stand-in data of
the same shape and task; a broken case keeps the fault the thread resolved, a fixed case applies the resolution.
Keras programs are translated with Keras' defaults (glorot_uniform kernels, zero biases, Adam/RMSprop eps=1e-7,
LSTM kernels glorot_uniform with orthogonal recurrent kernels and a unit forget-gate bias). The holdout split is
measured once, at the end: these cases are not for tuning.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from torch import nn

from bench.cases.registry import Setup, case
from bench.data import Split, _split
from bench.real.sequences import keras_categorical_crossentropy, keras_dense, keras_lstm_
from bench.real.standins import loaders, series_windows
from bench.real.tabular import (
    KerasDense,
    keras_adam,
    keras_binary_crossentropy,
    keras_rmsprop,
    setup,
    standardized,
    threshold_half,
)

# ---------------------------------------------------------------------------------------------- offline stand-ins


@cache
def offset_pairs(n: int = 5000, top: int = 50000) -> Split:
    """The thread's toy data: x1 running over 0..top in even steps, x2 = x1 + 10 + (0.5 - U(0, 1)), label 1 when
    x2 - x1 > 10; raw values up to `top` as in the thread (every 10th of its 50000 rows)."""
    rng = np.random.RandomState(26273)
    x1 = np.linspace(0, top - 1, n)
    x2 = x1 + 10 + (0.5 - rng.random_sample(n))
    x = np.stack([x1, x2], 1).astype(np.float32)
    return _split(x, (x2 - x1 > 10).astype(np.float32)[:, None])


@cache
def heart_rates(n: int = 2000) -> Split:
    """One patient's heart rate in beats per minute, (N, 1), wandering around 92 with a spread of about 8, labelled
    1 (anomaly) above 91 as the thread labels it."""
    rng = np.random.RandomState(91)
    walk = np.cumsum(rng.normal(0, 1.0, size=n))
    walk = (walk - walk.mean()) / walk.std()
    bpm = 92 + 6 * walk + rng.normal(0, 4, size=n)
    return _split(bpm[:, None].astype(np.float32), (bpm > 91).astype(np.float32)[:, None])


@cache
def quartic_curve() -> Split:
    """The thread's curve: x = -100, -99.5, ..., 99.5 and y = x**4 (up to 1e8), both (N, 1)."""
    x = np.arange(-100, 100, 0.5)[:, None]
    return _split(x.astype(np.float32), (x**4).astype(np.float32), stratify=False)


@cache
def channel_first_windows(window: int = 30) -> Split:
    """series_windows as sktime hands panels to its torch networks: (N, 1 channel, window) inputs and a 1-D (N,)
    target (sktime's regressors keep y as a vector)."""
    d = series_windows(window=window)
    return Split(
        d.x_train.transpose(0, 2, 1).copy(), d.y_train[:, 0].copy(), d.x_test.transpose(0, 2, 1).copy(),
        d.y_test[:, 0].copy(),
    )  # fmt: skip


@cache
def multi_hot_scores(n: int = 3000, features: int = 20, labels: int = 8) -> Split:
    """Multi-label tabular data where most rows carry several labels: (N, features) standard-normal inputs and
    (N, labels) 0/1 targets, label j on when a noisy linear score of the inputs is positive (about half the labels
    on per row, as in tagging data with several tags per item)."""
    rng = np.random.RandomState(labels * 7)
    x = rng.normal(size=(n, features))
    score = x @ rng.normal(size=(features, labels)) / np.sqrt(features) + 0.3 * rng.normal(size=(n, labels))
    return _split(x.astype(np.float32), (score > 0).astype(np.float32), stratify=False)


AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


@cache
def peptide_ccs(n: int = 2000, padding: int = 60) -> Split:
    """Peptides with their charge and collision cross section (CCS, about 300..1100 square angstroms), encoded as
    the tutorial does: a (20 amino acids, `padding` positions) one-hot matrix per peptide, here with the charge
    (2..4) appended as one more column, so inputs are (N, 20, padding + 1). CCS grows with length and charge and
    with the share of bulky residues."""
    rng = np.random.RandomState(padding)
    bulk = rng.uniform(0.6, 1.4, size=len(AMINO_ACIDS))
    x = np.zeros((n, len(AMINO_ACIDS), padding + 1), dtype=np.float32)
    ccs = np.zeros(n)
    for i in range(n):
        length = rng.randint(7, 31)
        residues = rng.randint(0, len(AMINO_ACIDS), size=length)
        charge = rng.choice([2, 3, 4], p=[0.5, 0.35, 0.15])
        x[i, residues, np.arange(length)] = 1.0
        x[i, :, padding] = charge
        ccs[i] = 180 + 14 * length * bulk[residues].mean() + 90 * (charge - 2) + rng.normal(0, 15)
    return _split(x, ccs.astype(np.float32)[:, None], stratify=False)


# ---------------------------------------------------------------------------------------------- models


class TwoLayerSigmoidNet(nn.Module):
    """The thread's Model(input_size, H1, output_size): Linear -> sigmoid -> Linear -> sigmoid."""

    def __init__(self, input_size: int = 1, h1: int = 4, output_size: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, h1)
        self.linear2 = nn.Linear(h1, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear2(torch.sigmoid(self.linear(x))))


class KerasQuarticNet(nn.Sequential):
    """Keras Dense(50) -> sigmoid -> Dense(50) -> elu -> Dense(1), with glorot_uniform weights and zero biases."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(1, 50), nn.Sigmoid(), nn.Linear(50, 50), nn.ELU(), nn.Linear(50, 1))
        for layer in self:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)


class FCNNetwork(nn.Module):
    """sktime's FCN network: three Conv1d -> BatchNorm -> ReLU blocks (kernels 8, 5, 3, 'same' padding), global
    average pooling over time and a Linear(filters, 1) regression output, which leaves (N, 1)."""

    def __init__(self, channels: int = 1, filters: tuple[int, int, int] = (32, 64, 32)) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        n_in = channels
        for n_out, kernel in zip(filters, (8, 5, 3), strict=True):
            blocks += [nn.Conv1d(n_in, n_out, kernel, padding="same"), nn.BatchNorm1d(n_out), nn.ReLU()]
            n_in = n_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(n_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x)  # (N, C, T) -> (N, filters, T)
        return self.fc(h.mean(dim=2))  # global average pooling: (N, filters) -> (N, 1)


class PatchTSTRegressor(nn.Module):
    """PatchTST for one-step forecasting: the window cut into overlapping patches, a Linear patch embedding plus a
    learned position embedding, a batch-first nn.TransformerEncoder, the mean over patch tokens and a Linear head to
    pred_len outputs, so (N, pred_len) = (N, 1) for one-step forecasts."""

    def __init__(
        self, window: int = 30, patch_len: int = 6, stride: int = 3, d_model: int = 32, heads: int = 4, layers: int = 2
    ) -> None:
        super().__init__()
        self.patch_len, self.stride = patch_len, stride
        n_patches = (window - patch_len) // stride + 1
        self.embed = nn.Linear(patch_len, d_model)
        self.positions = nn.Parameter(torch.randn(1, n_patches, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)  # pred_len = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = x[..., 0].unfold(1, self.patch_len, self.stride)  # (N, T, 1) -> (N, n_patches, patch_len)
        h = self.encoder(self.embed(patches) + self.positions)  # (N, n_patches, d_model)
        return self.head(h.mean(dim=1))  # (N, 1)


class CCSBiLSTM(nn.Module):
    """The tutorial's Keras CCS model: two stacked Bidirectional(LSTM(units)) over the one-hot matrix (its 20
    amino-acid rows are the time steps, its positions the features), Dense(5, relu) on the charge, both concatenated
    into Dense(64, relu) -> Dense(32, relu) -> Dense(1, relu)."""

    def __init__(self, positions: int = 60, units: int = 12) -> None:
        super().__init__()
        self.positions = positions
        self.lstm1 = keras_lstm_(nn.LSTM(positions, units, batch_first=True, bidirectional=True))
        self.lstm2 = keras_lstm_(nn.LSTM(2 * units, units, batch_first=True, bidirectional=True))
        self.charge = keras_dense(1, 5)
        self.dense1, self.dense2, self.out = keras_dense(2 * units + 5, 64), keras_dense(64, 32), keras_dense(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one_hot, charge = x[..., : self.positions], x[:, 0, self.positions :]  # (N, 20, 60), (N, 1)
        a, _ = self.lstm1(one_hot)  # (N, 20, 2 * units)
        _, (h, _) = self.lstm2(a)  # h: (2, N, units), the final forward and backward states
        a = torch.cat([h[0], h[1]], dim=1)  # Keras' Bidirectional(LSTM) output: (N, 2 * units)
        c = torch.cat([a, torch.relu(self.charge(charge))], dim=1)
        c = torch.relu(self.dense2(torch.relu(self.dense1(c))))
        return torch.relu(self.out(c))  # Dense(1, activation="relu"): (N, 1), never below 0


# ---------------------------------------------------------------------------------------------- cases


@case(
    "data.unnormalized",
    split="holdout",
    steps=1500,
    source="https://datascience.stackexchange.com/questions/26273/binary-classification-toy-problem",
)
def ho_keras_offset_pairs_raw_inputs() -> Setup:
    """A Keras net meant to tell whether x2 - x1 exceeds 10 (x1 = 0..49999, x2 = x1 + 10 +- 0.5) stayed at 51%
    accuracy: the answer found the inputs unscaled (0 to 50009) and, with each column standardized, reached 100%.
    Dense(2, relu) -> Dense(16, relu) -> Dense(1, sigmoid), binary_crossentropy, RMSprop lr 1e-3 and batch 10 as in
    the thread; 5000 of its 50000 rows over the same range; 1500 steps of its 1000 epochs."""
    d = offset_pairs()
    model = KerasDense([2, 2, 16, 1], nn.ReLU, nn.Sigmoid())
    return setup(d, model, keras_binary_crossentropy, keras_rmsprop(model), "binary", 10, threshold_half)


@case(
    "data.unnormalized",
    split="holdout",
    steps=1000,
    source="https://exchangetuts.com/pytorch-binary-classification-same-network-structure-simpler-data-but-worse-performance-1640041743893933",
)
def ho_heart_rate_raw_bpm() -> Setup:
    """The network that separated make_circles (Linear -> sigmoid -> Linear -> sigmoid, BCELoss, full batch) was
    reused on one patient's heart rate labelled as an anomaly above 91 and only reached loss 0.43 after 10000
    epochs. The answer: the inputs sit around 92 with a large spread, not normalized; standardizing them (and Adam at
    lr 0.01) converges in 1000 iterations. The thread's H1 and original lr are not shown: H1 = 4 as in its circles
    model, Adam lr 1e-3 (the answer raises it); the heart-rate series is a seeded walk around 92; 1000 steps, the
    budget in which the answer's normalized version converges."""
    d = heart_rates()
    model = TwoLayerSigmoidNet()
    return setup(d, model, nn.BCELoss(), torch.optim.Adam(model.parameters(), lr=1e-3), "binary")


@case(
    "data.unnormalized",
    "data.target_scale",
    split="holdout",
    steps=1000,
    source="https://stackoverflow.com/questions/52800582/why-do-i-fail-to-predict-y-x4-with-keras-y-x3-works",
)
def ho_keras_quartic_raw_scale() -> Setup:
    """Keras Dense(50) -> sigmoid -> Dense(50) -> elu -> Dense(1) fitted y = x**4 on x in [-100, 100) with MSE and
    Adam, full batch: it converged to an inaccurate line. The answer: inputs of +-100 saturate the sigmoid and targets
    up to 1e8 are far beyond what glorot-initialized layers output, so both must be scaled. The thread's data and
    model; 1000 full-batch steps of its 100 x 1000 epochs."""
    d = quartic_curve()
    model = KerasQuarticNet()
    return setup(d, model, nn.MSELoss(), keras_adam(model), "regression")


@case("loss.shape_broadcast", split="holdout", steps=400, source="https://github.com/sktime/sktime/issues/10931")
def ho_fcn_regressor_target_broadcast() -> Setup:
    """sktime's FCNRegressorTorch (and three other torch regressors) ended in Linear(..., 1) and emitted (batch, 1)
    while the base class fed (batch,) targets to MSELoss, which broadcasts to (batch, batch); the issue, fixed in the
    PR that squeezes the prediction, called it a wrong training signal. FCN filters 128/256/128 scaled to 32/64/32;
    Adam lr 1e-3 and batch 16 (the FCN defaults); the series are the forecasting stand-in, channel first."""
    d = channel_first_windows()
    model = FCNNetwork()
    train, held = loaders(d, 16)
    return Setup(model, train, nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=1e-3), held, "regression")


@case(split="holdout", steps=400, source="https://github.com/sktime/sktime/issues/10931")
def ho_fixed_fcn_regressor_squeezed() -> Setup:
    """The same FCN regressor after the issue's fix (PR #10932): the epoch loop squeezes the trailing singleton of
    the (batch, 1) prediction before MSELoss, so it meets the (batch,) targets one to one. Filters 32/64/32, Adam
    lr 1e-3, batch 16."""
    d = channel_first_windows()
    model = FCNNetwork()
    train, held = loaders(d, 16)
    mse = nn.MSELoss()

    def loss_fn(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y_pred.ndim == 2 and y_pred.shape[1] == 1 and y.ndim == 1:
            y_pred = y_pred.squeeze(-1)  # (N, 1) -> (N,)
        return mse(y_pred, y)

    return Setup(model, train, loss_fn, torch.optim.Adam(model.parameters(), lr=1e-3), held, "regression")


@case(
    "loss.shape_broadcast",
    split="holdout",
    steps=400,
    source="https://github.com/jsboige/CoursIA/pull/926",
)
def ho_patchtst_one_step_target_broadcast() -> Setup:
    """A course's forecasting trainers (Mamba, iTransformer, PatchTST, TFT) warned "Using a target size ([64]) that
    is different to the input size ([64, 1])" for pred_len = 1: the PR found MSELoss broadcasting (B, 1) against (B,)
    into (B, B) pairwise terms and fixed it with y.view_as(pred). This is the PatchTST trainer at batch 64; the PR
    shows no architecture, so a standard small PatchTST (patches of 6, stride 3, d_model 32, 2 layers), Adam lr
    1e-3, on the forecasting stand-in with a 1-D target."""
    d = series_windows().map_y(lambda y: y[:, 0])
    model = PatchTSTRegressor()
    train, held = loaders(d, 64)
    return Setup(model, train, nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=1e-3), held, "regression")


@case(
    "arch.output_activation",
    "loss.task_mismatch",
    split="holdout",
    steps=600,
    source="https://github.com/keras-team/keras/issues/741",
)
def ho_keras_multilabel_softmax() -> Setup:
    """A Keras multi-label classifier built from the one-hot examples (softmax output, categorical cross-entropy)
    did not work; the reply: don't use softmax, use sigmoid units with binary_crossentropy, since softmax makes the
    labels compete for one unit of probability. The issue shows no layers: a Keras-default Dense(64, relu) ->
    Dense(8, softmax), Adam, batch 32, on seeded tabular data with 8 multi-hot labels (about half on per row), read
    at 0.5 as in the thread."""
    d = multi_hot_scores()
    model = KerasDense([20, 64, 8], nn.ReLU, nn.Softmax(dim=1))
    return setup(d, model, keras_categorical_crossentropy, keras_adam(model), "multilabel", 32, threshold_half)


@case(split="holdout", steps=600, source="https://github.com/keras-team/keras/issues/741")
def ho_fixed_keras_multilabel_sigmoid() -> Setup:
    """The reply's multi-label head: sigmoid units and binary_crossentropy (each label its own yes/no), the same
    Keras-default Dense(64, relu) trunk, Adam, batch 32, predictions `model.predict(x) > 0.5` as suggested there."""
    d = multi_hot_scores()
    model = KerasDense([20, 64, 8], nn.ReLU, nn.Sigmoid())
    return setup(d, model, keras_binary_crossentropy, keras_adam(model), "multilabel", 32, threshold_half)


@case(
    "arch.output_activation",
    split="holdout",
    steps=1200,
    source="https://github.com/ProteomicsML/ProteomicsML/pull/203",
)
def ho_ccs_bilstm_relu_output() -> Setup:
    """ProteomicsML's ion-mobility tutorial (Keras BiLSTM CCS regressor) returned 0 for every peptide: the PR found
    Dense(1, activation="relu") on the regression output, whose pre-activation can start negative for all inputs so
    no gradient flows, and removes it. The tutorial's small-data settings: LSTM 12 units, Dense 64 / 32, MSE, Adam,
    batch 128, 100 epochs (1200 steps here); its CCS data replaced by seeded peptides, charge packed as a column."""
    d = peptide_ccs()
    model = CCSBiLSTM()
    return setup(d, model, nn.MSELoss(), keras_adam(model), "regression", 128)


@case(
    split="holdout",
    steps=1000,
    source="https://exchangetuts.com/pytorch-binary-classification-same-network-structure-simpler-data-but-worse-performance-1640041743893933",
)
def ho_fixed_heart_rate_standardized() -> Setup:
    """The answer's version of the heart-rate classifier: x_data = (x_data - mean) / std (with the train part's
    statistics) and Adam at lr 0.01, the same Linear -> sigmoid -> Linear -> sigmoid net (H1 = 4), BCELoss, full
    batch, 1000 iterations as in the answer."""
    d = standardized(heart_rates(), targets=False)
    model = TwoLayerSigmoidNet()
    return setup(d, model, nn.BCELoss(), torch.optim.Adam(model.parameters(), lr=0.01), "binary")
