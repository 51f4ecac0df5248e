"""Sequence models rebuilt from public threads: LSTMs, GRUs and Transformer encoders on text, time-series
classification and forecasting, and Keras LSTMs translated to PyTorch.

Each case is the thread's program (architecture, loss, optimizer, learning rate, batch size) on offline stand-in
data of the same shape and task; a broken case keeps the fault the thread found, a fixed case applies the
resolution. Keras layers are translated with Keras' defaults written out: LSTM kernels glorot_uniform, recurrent
kernels orthogonal, a unit forget-gate bias, Dense glorot_uniform with zero bias, Adam with epsilon 1e-7.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.cases.registry import Setup, case
from bench.data import Split, _split
from bench.real.standins import loaders, mnist_like, series_windows, token_reviews

LSTMState = tuple[torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------------------------------------------------------
# Stand-in data
# ---------------------------------------------------------------------------------------------------------------


def pre_pad(x: np.ndarray) -> np.ndarray:
    """Rows of token ids with their zero padding moved to the front, as Keras' pad_sequences pads by default."""
    out = np.zeros_like(x)
    for i, row in enumerate(x):
        tokens = row[row > 0]
        out[i, len(row) - len(tokens) :] = tokens
    return out


@cache
def left_padded_reviews() -> Split:
    """token_reviews (binary sentiment, 40 token ids, vocabulary 200) padded at the front."""
    return token_reviews().map_x(pre_pad)


@cache
def short_reviews() -> Split:
    """A smaller, shorter token_reviews (1000 texts of 30 tokens), pre-padded."""
    return token_reviews(n=1000, length=30).map_x(pre_pad)


@cache
def mnist_rows() -> Split:
    """MNIST-like rows: the digits upsampled to 20x20 and centred in a blank 28x28 frame as MNIST centres them,
    (N, 28 rows, 28 columns) in [0, 1]; 10 classes."""
    d = mnist_like(20)

    def frame(x: np.ndarray) -> np.ndarray:
        return np.pad(x[:, 0], ((0, 0), (4, 4), (4, 4))).astype(np.float32)

    return d.map_x(frame)


@cache
def review_scores() -> Split:
    """Text regression: the token_reviews inputs with a score target (N, 1): good minus bad keyword tokens."""

    def score(x: np.ndarray) -> np.ndarray:
        good = ((x >= 1) & (x <= 20)).sum(1)
        bad = ((x >= 21) & (x <= 40)).sum(1)
        return (good - bad).astype(np.float32)[:, None]

    d = token_reviews()
    return Split(d.x_train, score(d.x_train), d.x_test, score(d.x_test))


@cache
def token_topics(n: int = 1800, length: int = 40, vocab: int = 200, classes: int = 6) -> Split:
    """Text classification into `classes` topics: (N, length) token ids, pre-padded; each topic has 10 keyword
    tokens, and a text holds 3-6 keywords of its topic among random filler tokens (ids above 10 * classes)."""
    rng = np.random.RandomState(classes * 100 + length)
    labels = rng.randint(0, classes, size=n)
    x = rng.randint(classes * 10 + 1, vocab, size=(n, length))
    lengths = rng.randint(length // 2, length + 1, size=n)
    for i in range(n):
        k = rng.randint(3, 7)
        slots = rng.choice(lengths[i], size=k, replace=False)
        x[i, slots] = 1 + labels[i] * 10 + rng.randint(0, 10, size=k)
        x[i, lengths[i] :] = 0
    return _split(pre_pad(x).astype(np.int64), labels.astype(np.int64))


@cache
def token_counts(n: int = 2400, length: int = 48, vocab: int = 16) -> Split:
    """Multi-label sequences: (N, length) ids from a vocabulary of `vocab` drawn with per-text frequencies; label j
    (of `vocab`) is 1 when id j occurs at least 3 times."""
    rng = np.random.RandomState(vocab + length)
    probs = rng.dirichlet(np.full(vocab, 1.0), size=n)
    x = np.stack([rng.choice(vocab, size=length, p=p) for p in probs])
    counts = np.stack([np.bincount(row, minlength=vocab) for row in x])
    y = (counts >= 3).astype(np.float32)
    return _split(x.astype(np.int64), y, stratify=False)


@cache
def binary_sequences(n: int = 1600, length: int = 16) -> Split:
    """(N, length, 1) sequences of 0/1 bits, labelled 1 when more than half of the bits are set, else 0."""
    rng = np.random.RandomState(length + 7)
    rate = rng.uniform(0.2, 0.8, size=(n, 1))
    bits = (rng.uniform(size=(n, length)) < rate).astype(np.float32)
    labels = (bits.sum(1) > length / 2).astype(np.float32)
    return _split(bits[..., None], labels[:, None])


@cache
def uniform_sums(n: int = 500, length: int = 10) -> Split:
    """(N, length, 1) uniform random sequences; the target (N, 1) is each sequence's sum."""
    rng = np.random.RandomState(length)
    x = rng.uniform(size=(n, length, 1)).astype(np.float32)
    return _split(x, x.sum(1), stratify=False)


@cache
def stereo_echo(n: int = 1500, window: int = 30, delay: int = 5) -> Split:
    """Audio-effect modelling: (N, window, 2) windows of a raw stereo signal (values within about +-27) and the
    effected sample at the window's end, raw plus half its echo `delay` steps back, as an (N, 2) target."""
    rng = np.random.RandomState(window + delay)
    t = np.arange(n + window + delay)
    left = 12 * np.sin(2 * np.pi * t / 23) + 5 * np.sin(2 * np.pi * t / 7 + 1.0)
    right = 10 * np.sin(2 * np.pi * t / 17 + 2.0) + 6 * np.sin(2 * np.pi * t / 5)
    raw = np.stack([left, right], 1) + rng.normal(0, 1.0, size=(len(t), 2))
    effected = raw[delay:] + 0.5 * raw[:-delay]
    raw = raw[delay:]  # effected[i] is the effect applied to raw[i]
    x = np.stack([raw[i : i + window] for i in range(n)]).astype(np.float32)
    y = effected[window - 1 : window - 1 + n].astype(np.float32)
    return _split(x, y, stratify=False)


def full_batch(d: Split) -> tuple[DataLoader, DataLoader]:
    """The whole training part as one batch each step, as threads that call model(X_train) have it."""
    return loaders(d, len(d.x_train))


# ---------------------------------------------------------------------------------------------------------------
# Keras defaults and the loss a tuple-returning model needs
# ---------------------------------------------------------------------------------------------------------------


def keras_lstm_(lstm: nn.LSTM) -> nn.LSTM:
    """Keras' LSTM defaults: glorot_uniform kernel, orthogonal recurrent kernel, zero bias with 1 on the forget gate
    (PyTorch's two biases add up, so the forget 1 goes into bias_ih alone)."""
    hidden = lstm.hidden_size
    for name, param in lstm.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(param)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(param)
        else:
            nn.init.zeros_(param)
            if name.startswith("bias_ih"):
                with torch.no_grad():
                    param[hidden : 2 * hidden] = 1.0  # gates are ordered i, f, g, o
    return lstm


def keras_dense(n_in: int, n_out: int) -> nn.Linear:
    """Keras' Dense defaults: glorot_uniform weight, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def keras_adam(params: Iterable[nn.Parameter], lr: float = 1e-3, eps: float = 1e-7) -> torch.optim.Adam:
    """Keras' Adam: lr 1e-3, betas (0.9, 0.999), epsilon 1e-7 (1e-8 in Keras 1 and older)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=eps)


def keras_binary_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras' binary_crossentropy on probabilities: clipped to [1e-7, 1 - 1e-7], element-wise with broadcasting,
    averaged."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


def keras_categorical_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras' categorical_crossentropy on probabilities: rescaled to sum to 1, clipped, -sum(y * log p) per sample."""
    p = (p / p.sum(-1, keepdim=True)).clamp(1e-7, 1 - 1e-7)
    return -(y * p.log()).sum(-1).mean()


def on_output(loss: Callable[..., torch.Tensor]) -> Callable[[tuple[torch.Tensor, object], torch.Tensor], torch.Tensor]:
    """The loss on the first item of an (output, hidden) pair, as the user unpacks `output, h = net(x, h)`."""

    def loss_fn(out: tuple[torch.Tensor, object], y: torch.Tensor) -> torch.Tensor:
        return loss(out[0], y)

    return loss_fn


# ---------------------------------------------------------------------------------------------------------------
# Udacity's sentiment LSTM: the output reshaped with view(-1, batch, 2)
# ---------------------------------------------------------------------------------------------------------------


class ViewedSentimentLSTM(nn.Module):
    """Embedding, 2-layer LSTM, Linear to 2 outputs and a sigmoid at every step; the output is reshaped with
    view(-1, batch, 2) and row 0 taken as "the last batch of labels"."""

    def __init__(self, vocab: int, embed: int = 32, hidden: int = 32, layers: int = 2, drop: float = 0.5) -> None:
        super().__init__()
        self.layers, self.hidden = layers, hidden
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, dropout=drop, batch_first=True)
        self.fc = nn.Linear(hidden, 2)
        self.sig = nn.Sigmoid()

    def init_hidden(self, n: int) -> LSTMState:
        return torch.zeros(self.layers, n, self.hidden), torch.zeros(self.layers, n, self.hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, LSTMState]:
        n = x.size(0)
        out, h = self.lstm(self.embedding(x), self.init_hidden(n))  # (N, T) -> (N, T, H)
        out = self.sig(self.fc(out))  # (N, T, 2)
        out = out.view(-1, n, 2)  # (N, T, 2) -> (T, N, 2) by view: slice 0 holds the first steps of samples 0, 1
        return out[0], h  # (N, 2): the same two samples behind every row


class SentimentLSTM(nn.Module):
    """The corrected sentiment LSTM: one sigmoid output per step, reshaped batch-first, the last step kept."""

    def __init__(self, vocab: int, embed: int = 32, hidden: int = 32, layers: int = 2, drop: float = 0.5) -> None:
        super().__init__()
        self.layers, self.hidden = layers, hidden
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, dropout=drop, batch_first=True)
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(hidden, 1)
        self.sig = nn.Sigmoid()

    def init_hidden(self, n: int) -> LSTMState:
        return torch.zeros(self.layers, n, self.hidden), torch.zeros(self.layers, n, self.hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, LSTMState]:
        n = x.size(0)
        out, h = self.lstm(self.embedding(x), self.init_hidden(n))  # (N, T) -> (N, T, H)
        out = out.contiguous().view(-1, self.hidden)  # (N, T, H) -> (N*T, H), sample-major
        out = self.sig(self.fc(self.dropout(out)))  # (N*T, 1)
        return out.view(n, -1)[:, -1], h  # (N*T, 1) -> (N, T) -> each review's last step, (N,)


@case(
    "arch.batch_mixing",
    "arch.output_activation",
    split="dev",
    steps=200,
    source="https://github.com/udacity/deep-learning-v2-pytorch/issues/9",
)
def seq_lstm_sentiment_view_batch() -> Setup:
    """Udacity's sentiment-LSTM solution: the issue found that view(-1, batch, 2)[0] on the (batch, seq, 2) output
    mixes samples (every row holds the first steps of samples 0 and 1, one answer per batch), and the fixing commit
    also replaced the sigmoid-then-CrossEntropyLoss head. Embedding 400 / LSTM 256 scaled to 32 / 32 and reviews to
    40 tokens; the hidden state starts at zero each batch and the notebook's gradient clipping is left out."""
    d = left_padded_reviews()
    model = ViewedSentimentLSTM(vocab=200)
    train, held = loaders(d, 50)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    return Setup(model, train, on_output(nn.CrossEntropyLoss()), optimizer, held, "binary")


# ---------------------------------------------------------------------------------------------------------------
# A Keras LSTM with softmax on its single output unit
# ---------------------------------------------------------------------------------------------------------------


class SoftmaxOneUnitLSTM(nn.Module):
    """Keras LSTM(128) then Dense(1, activation="softmax"), with Keras' initializers."""

    def __init__(self, units: int = 128) -> None:
        super().__init__()
        self.lstm = keras_lstm_(nn.LSTM(1, units, batch_first=True))
        self.dense = keras_dense(units, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (N, T, 1) -> (N, T, units)
        return torch.softmax(self.dense(out[:, -1]), dim=1)  # (N, 1): softmax over one unit is always 1


@case(
    "arch.softmax_single_unit",
    split="dev",
    steps=100,
    source="https://stackoverflow.com/questions/47241622/is-it-okay-to-use-stateful-recurrent-nn-lstm-for-classification",
)
def seq_keras_lstm_softmax_one_unit() -> Setup:
    """A Keras LSTM on binary sequences stayed at or below 55% accuracy while an MLP reached 97%: the accepted answer
    found softmax on the single output unit, which always outputs 1 (zero gradient). 128 binary features as steps
    scaled to 16; the thread's +1/-1 labels become 1/0 (PyTorch's BCELoss refuses -1); Keras' stateful carry-over
    between batches is left out; LSTM(128), binary cross-entropy, Adam and batch 200 as in the thread."""
    d = binary_sequences()
    model = SoftmaxOneUnitLSTM()
    train, held = loaders(d, 200)
    return Setup(model, train, nn.BCELoss(), keras_adam(model.parameters()), held, "binary")


@case(split="dev", steps=400, source="https://github.com/udacity/deep-learning-v2-pytorch/issues/9")
def seq_fixed_lstm_sentiment_last_step() -> Setup:
    """The Udacity sentiment LSTM as fixed after the issue: the LSTM output is stacked (batch*seq, hidden), a single
    sigmoid unit and BCELoss replace the 2-way head, and view(batch, -1)[:, -1] keeps each review's last step.
    Embedding 400 / LSTM 256 scaled to 32 / 32, reviews to 40 tokens, pre-padded as the notebook pads."""
    d = left_padded_reviews()
    model = SentimentLSTM(vocab=200)
    train, held = loaders(d, 50)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    bce = nn.BCELoss()

    def loss_fn(out: tuple[torch.Tensor, LSTMState], y: torch.Tensor) -> torch.Tensor:
        return bce(out[0], y.float())

    return Setup(model, train, loss_fn, optimizer, held, "binary", predict=lambda out: out[0].round())


# ---------------------------------------------------------------------------------------------------------------
# An LSTM forecaster whose windows are reshaped with view instead of transposed
# ---------------------------------------------------------------------------------------------------------------


class ViewedForecastLSTM(nn.Module):
    """Sequence-first LSTM(1, 32) and Linear(32, 1) on the last step; the (N, T) windows are made (T, N, 1) with
    view, as the blog's script does before the model."""

    def __init__(self, window: int, hidden: int = 32) -> None:
        super().__init__()
        self.window = window
        self.lstm = nn.LSTM(1, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(self.window, -1, 1)  # (N, T, 1) -> (T, N, 1) by view: each column strings pieces of samples
        out, _ = self.lstm(x)  # (T, N, hidden)
        return self.linear(out[-1]).view(-1)  # last step: (N, hidden) -> (N,)


@case("arch.batch_mixing", split="dev", steps=500, source="https://github.com/jessicayung/blog-code-snippets/issues/6")
def seq_lstm_forecast_view_not_transpose() -> Setup:
    """An LSTM forecasting blog post's baseline predicted poorly: the issue found X_train.view([input_size, -1, 1])
    on the (samples, steps) windows, which strings together pieces of different windows where X_train.t().view was
    meant. The blog's LSTM(1, 32), MSELoss(reduction="sum"), Adam lr 1e-2, full batch and 500 steps; its AR series
    replaced by a noisy two-frequency series in windows of 20."""
    d = series_windows(n=400, window=20).map_y(lambda y: y[:, 0])
    model = ViewedForecastLSTM(window=20)
    train, held = full_batch(d)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return Setup(model, train, nn.MSELoss(reduction="sum"), optimizer, held, "regression")


# ---------------------------------------------------------------------------------------------------------------
# A library's LSTM regressor: (N, 1) output against an (N,) target
# ---------------------------------------------------------------------------------------------------------------


class LastStep(nn.Module):
    """The (output, state) pair of a batch-first nn.LSTM reduced to the output at the last step."""

    def forward(self, x: tuple[torch.Tensor, LSTMState]) -> torch.Tensor:
        out, _ = x
        return out[:, -1, :]  # (N, T, H) -> (N, H)


def lstm_regressor(n_features: int, hidden: int = 20, layers: int = 2) -> nn.Sequential:
    """The library's estimator network: batch-first LSTM, its last step, Linear(hidden, 1)."""
    return nn.Sequential(nn.LSTM(n_features, hidden, layers, batch_first=True), LastStep(), nn.Linear(hidden, 1))


@case("loss.shape_broadcast", split="dev", steps=200, source="https://github.com/aiboxlab/nlp/issues/97")
def seq_lstm_regressor_target_broadcast() -> Setup:
    """An NLP library's LSTMRegressor warned "Using a target size ([N]) that is different to the input size
    ([N, 1])": the issue found the Linear head's (batch, 1) output against (batch,) targets, which MSELoss
    broadcasts to (batch, batch), so the optimum is the target mean. The estimator's defaults (LSTM 20 units, 2
    layers, AdamW lr 1e-3, batch 256, loader not shuffled); essay features replaced by next-value forecasting."""
    d = series_windows().map_y(lambda y: y[:, 0])
    model = lstm_regressor(1)
    train, held = loaders(d, 256, shuffle=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return Setup(model, train, nn.MSELoss(), optimizer, held, "regression")


# ---------------------------------------------------------------------------------------------------------------
# A Chinese-sentiment BiLSTM with attention: batch-first embeddings into a sequence-first LSTM
# ---------------------------------------------------------------------------------------------------------------


class AttentionBiLSTM(nn.Module):
    """Embedding, 2-layer bidirectional LSTM (sequence-first), additive attention over dim 1, Linear, Linear."""

    def __init__(self, vocab: int, embed: int = 50, hidden: int = 32, layers: int = 2, drop: float = 0.2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.encoder = nn.LSTM(embed, hidden, layers, bidirectional=True, dropout=drop)
        self.weight_w = nn.Parameter(torch.empty(2 * hidden, 2 * hidden).uniform_(-0.1, 0.1))
        self.weight_proj = nn.Parameter(torch.empty(2 * hidden, 1).uniform_(-0.1, 0.1))
        self.decoder1 = nn.Linear(2 * hidden, hidden)
        self.decoder2 = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embeddings = self.embedding(x)  # (N, T) -> (N, T, E)
        states, _ = self.encoder(embeddings.permute(0, 1, 2))  # a no-op permute: the LSTM reads N as time
        u = torch.tanh(torch.matmul(states, self.weight_w))
        att = torch.softmax(torch.matmul(u, self.weight_proj), dim=1)  # (N, T, 1)
        encoding = torch.sum(states * att, dim=1)  # (N, 2H)
        return self.decoder2(self.decoder1(encoding))


@case(
    "arch.batch_mixing",
    split="dev",
    steps=360,
    source="https://github.com/Ligouhai-bigone/Sentiment-Analysis-Chinese-pytorch/issues/1",
)
def seq_bilstm_attention_seq_first() -> Setup:
    """A Chinese sentiment repo's LSTM_attention model: the issue found its batch-first embeddings passed through
    permute([0, 1, 2]), a no-op, into an nn.LSTM without batch_first, so the recurrence runs across the samples of a
    batch (a second user agreed; the repo's plain LSTM model permutes [1, 0, 2]). Two bidirectional layers,
    dropout 0.2, batch 64, CrossEntropyLoss, Adam lr 1e-4 and 30 epochs as in its config (360 steps on 750 texts);
    hidden 100 scaled to 32, word2vec replaced by a trainable 50-d embedding, texts cut to 30 tokens."""
    d = short_reviews()
    model = AttentionBiLSTM(vocab=200)
    train, held = loaders(d, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "binary")


# ---------------------------------------------------------------------------------------------------------------
# The IMDB GRU of a framework comparison, fixed with batch_first
# ---------------------------------------------------------------------------------------------------------------


class ImdbGRU(nn.Module):
    """Embedding, one batch-first GRU, Linear(hidden, 2) on the last step."""

    def __init__(self, vocab: int, embed: int = 125, hidden: int = 100) -> None:
        super().__init__()
        self.hidden = hidden
        self.embedding = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, num_layers=1, batch_first=True)
        self.l_out = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embedding(x)  # (N, T) -> (N, T, E)
        h0 = torch.zeros(1, x.size(0), self.hidden)
        x, _ = self.gru(x, h0)  # (N, T, H)
        return self.l_out(x[:, -1, :])  # last step: (N, H) -> (N, 2)


@case(split="dev", steps=200, source="https://github.com/pytorch/pytorch/issues/2674")
def seq_fixed_gru_imdb_batch_first() -> Setup:
    """The PyTorch IMDB notebook of a framework benchmark did not learn: the replies found its (batch, 150) data fed
    to a sequence-first RNN and said to set batch_first=True (or transpose the data to (150, batch)); the working
    notebook has a GRU with batch_first=True. Its hyperparameters (embedding 125, GRU 100, batch 64, Adam lr 1e-3,
    CrossEntropyLoss); vocabulary 30000 and 150 tokens scaled to 200 and 40, pre-padded; h0 sized to the batch."""
    d = left_padded_reviews()
    model = ImdbGRU(vocab=200)
    train, held = loaders(d, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-8)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, "binary")


# ---------------------------------------------------------------------------------------------------------------
# A Keras LSTM regressing audio samples through softmax and categorical cross-entropy
# ---------------------------------------------------------------------------------------------------------------


class SoftmaxRegressionLSTM(nn.Module):
    """Keras LSTM(units) then Dense(2, activation="softmax"), with Keras' initializers."""

    def __init__(self, n_features: int = 2, units: int = 128) -> None:
        super().__init__()
        self.lstm = keras_lstm_(nn.LSTM(n_features, units, batch_first=True))
        self.dense = keras_dense(units, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (N, T, 2) -> (N, T, units)
        return torch.softmax(self.dense(out[:, -1]), dim=-1)  # (N, 2), each in (0, 1), summing to 1


@case(
    "arch.output_activation",
    "loss.task_mismatch",
    split="dev",
    steps=300,
    source="https://discuss.tensorflow.org/t/lstm-only-yielding-outputs-between-0-1/3471",
)
def seq_keras_lstm_softmax_regression() -> Setup:
    """A Keras LSTM mimicking a guitar effect only output values between 0 and 1 while the effected samples lie
    within +-27: the reply found the softmax on the output layer, which bounds the outputs to (0, 1); the loss is
    also categorical cross-entropy on real-valued targets. LSTM 256 scaled to 128 and windows of 100 to 30; the
    last step feeds the Dense layer; Adam and batch 20 as in the thread; audio replaced by a stereo echo."""
    d = stereo_echo()
    model = SoftmaxRegressionLSTM()
    train, held = loaders(d, 20)
    return Setup(model, train, keras_categorical_crossentropy, keras_adam(model.parameters()), held, "regression")


# ---------------------------------------------------------------------------------------------------------------
# An MNIST-rows LSTM with batch_first removed
# ---------------------------------------------------------------------------------------------------------------


class RowLSTM(nn.Module):
    """nn.LSTM(in_dim, hidden, layers) without batch_first and a Linear classifier on out[:, -1, :]; `permute`
    makes the rows the time axis first, as a sequence-first LSTM needs."""

    def __init__(
        self, in_dim: int = 28, hidden: int = 64, layers: int = 2, classes: int = 10, *, permute: bool
    ) -> None:
        super().__init__()
        self.permute = permute
        self.lstm = nn.LSTM(in_dim, hidden, layers)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.permute:
            out, _ = self.lstm(x.permute(1, 0, 2))  # (N, T, F) -> (T, N, F) -> (T, N, H)
            return self.classifier(out[-1])  # last step: (N, H)
        out, _ = self.lstm(x)  # (N, T, F) read as (time=N, batch=T): the recurrence runs across the images
        return self.classifier(out[:, -1, :])  # "last step" is the last row of every image seen so far: (N, H)


@case("arch.batch_mixing", split="dev", steps=300, source="https://github.com/pytorch/pytorch/issues/1538")
def seq_lstm_rows_seq_first() -> Setup:
    """An LSTM classifying MNIST row by row gave a different result with batch_first=True commented out: nn.LSTM
    then reads the batch of 100 images as 100 time steps of 28 rows each, so out[:, -1, :] is the (blank) last row
    of every image so far, mixed across the batch. The report's LSTM (2 layers, CrossEntropyLoss, Adam lr 1e-2,
    batch 100); MNIST replaced by the digits centred in a blank 28x28 frame as MNIST's are; hidden 128 scaled to 64."""
    d = mnist_rows()
    model = RowLSTM(permute=False)
    train, held = loaders(d, 100)
    return Setup(
        model, train, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-2), held, "classification"
    )


@case(split="dev", steps=300, source="https://github.com/pytorch/pytorch/issues/1538")
def seq_fixed_lstm_rows_permuted() -> Setup:
    """The same row-by-row digit LSTM with the resolution for a sequence-first LSTM: the (batch, rows, 28) input is
    permuted to (rows, batch, 28) and the classifier reads the last time step, out[-1]. A look-alike of the broken
    case (no batch_first, a permute in forward) that is healthy. 2 layers, Adam lr 1e-2, batch 100, hidden 64."""
    d = mnist_rows()
    model = RowLSTM(permute=True)
    train, held = loaders(d, 100)
    return Setup(
        model, train, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-2), held, "classification"
    )


# ---------------------------------------------------------------------------------------------------------------
# Keras' IMDB bidirectional LSTM turned into a 6-class classifier with Dense(1, softmax)
# ---------------------------------------------------------------------------------------------------------------


class SoftmaxOneUnitBiLSTM(nn.Module):
    """Keras 0.3's imdb_bidirectional_lstm: Embedding, a forward and a backward LSTM concatenated, Dropout(0.5),
    Dense(1) with the user's softmax in place of the sigmoid."""

    def __init__(self, vocab: int, embed: int = 32, units: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)  # Keras 0.3's Embedding init
        self.lstm = keras_lstm_(nn.LSTM(embed, units, batch_first=True, bidirectional=True))
        self.dropout = nn.Dropout(0.5)
        self.dense = keras_dense(2 * units, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.embedding(x))  # h: (2, N, units), forward and backward final states
        merged = self.dropout(torch.cat([h[0], h[1]], dim=1))  # (N, 2 * units)
        return torch.softmax(self.dense(merged), dim=1)  # (N, 1): always 1


@case(
    "arch.softmax_single_unit",
    "loss.task_mismatch",
    split="dev",
    steps=150,
    source="https://github.com/keras-team/keras/issues/1261",
)
def seq_keras_bilstm_softmax_six_classes() -> Setup:
    """Keras' bidirectional IMDB LSTM adapted to 6 text classes always returned 1: the reply found Dense(1,
    activation="softmax") where Dense(nb_classes, softmax) was needed, a single softmax unit for six one-hot classes
    under the example's binary cross-entropy. Embedding 128 / LSTM 64 scaled to 32 / 32 and texts to 40 tokens;
    Keras' hard_sigmoid gates become PyTorch's sigmoid; batch 32 and Adam (eps 1e-8) as in the example."""
    d = token_topics()
    model = SoftmaxOneUnitBiLSTM(vocab=200)
    train, held = loaders(d, 32)

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return keras_binary_crossentropy(out, nn.functional.one_hot(y, 6).float())  # (N, 1) vs (N, 6), broadcast

    optimizer = keras_adam(model.parameters(), eps=1e-8)
    return Setup(model, train, loss_fn, optimizer, held, "classification", predict=lambda out: out.round().view(-1))


# ---------------------------------------------------------------------------------------------------------------
# A Transformer text regressor whose head squeezes (N, 1) logits against (N, 1) labels
# ---------------------------------------------------------------------------------------------------------------


class TokenTransformerRegressor(nn.Module):
    """Token and position embeddings with a learned [CLS] vector in front, a batch-first nn.TransformerEncoder, and
    a regression head Linear(d_model, 1) on the [CLS] position."""

    def __init__(self, vocab: int, length: int, d_model: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Parameter(torch.randn(1, length + 1, d_model) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tokens(x)  # (N, T) -> (N, T, D)
        h = torch.cat([self.cls.expand(len(h), -1, -1), h], dim=1) + self.positions  # (N, T + 1, D)
        return self.head(self.encoder(h)[:, 0])  # [CLS]: (N, D) -> logits (N, 1)


@case("loss.shape_broadcast", split="dev", steps=200, source="https://github.com/deepset-ai/FARM/issues/229")
def seq_transformer_regressor_squeezed_logits() -> Setup:
    """FARM's document regression (labels 0 to 16) warned "Using a target size ([32, 1]) that is different to the
    input size ([32])": the maintainer found the regression head squeezing its (batch, 1) logits before MSELoss
    against (batch, 1) labels, a (batch, batch) broadcast whose optimum is the mean. Batch 32 and MSE as in the
    example; DistilBERT replaced by a 2-layer nn.TransformerEncoder trained from scratch (AdamW lr 1e-3, not
    fine-tuning's 2e-5); texts are the sentiment stand-in with a score target."""
    d = review_scores()
    model = TokenTransformerRegressor(vocab=200, length=40)
    train, held = loaders(d, 32)
    mse = nn.MSELoss()

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return mse(logits.squeeze(), labels.float())  # (N,) against (N, 1)

    return Setup(model, train, loss_fn, torch.optim.AdamW(model.parameters(), lr=1e-3), held, "regression")


@case(split="dev", steps=300, source="https://github.com/aiboxlab/nlp/issues/97")
def seq_fixed_lstm_regressor_squeezed() -> Setup:
    """The same LSTMRegressor as fixed in the issue: the network's (batch, 1) output is squeezed to (batch,) so it
    matches the targets. LSTM 20 units, 2 layers, AdamW lr 1e-3, batch 256, no shuffling, as the estimator has it."""
    d = series_windows().map_y(lambda y: y[:, 0])
    model = nn.Sequential(*lstm_regressor(1), nn.Flatten(0))  # (N, 1) -> (N,)
    train, held = loaders(d, 256, shuffle=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return Setup(model, train, nn.MSELoss(), optimizer, held, "regression")


# ---------------------------------------------------------------------------------------------------------------
# A Keras multi-label LSTM ported to PyTorch without batch_first and with hard_sigmoid on the output
# ---------------------------------------------------------------------------------------------------------------


class PortedMultiLabelLSTM(nn.Module):
    """Embedding(16, 10), nn.LSTM(10, 50) without batch_first, out[:, -1, :], Dropout(0.1), Linear(50, 16) and a
    hard sigmoid (0.2 x + 0.5 clipped to [0, 1]) as the output."""

    def __init__(self, vocab: int = 16, embed: int = 10, hidden: int = 50) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(self.embedding(x))  # (N, T, E) read as (time=N, batch=T)
        x = self.fc(self.dropout(x[:, -1, :]))  # the last token position of every sequence so far: (N, 16)
        return (0.2 * x + 0.5).clamp(0.0, 1.0)  # hard sigmoid: flat, zero-gradient beyond |x| = 2.5


@case(
    "arch.batch_mixing",
    "arch.output_activation",
    split="dev",
    steps=400,
    source="https://discuss.pytorch.org/t/the-loss-in-pytorch-decreases-slower-than-in-keras/61598",
)
def seq_lstm_keras_port_seq_first() -> Setup:
    """A Keras multi-label LSTM (Embedding, CuDNNLSTM(50), Dense(16, sigmoid)) trained well but its PyTorch port's
    loss fell more slowly: the port builds nn.LSTM(10, 50) without batch_first for (batch, 48) token ids, so the
    recurrence runs over the batch and x[:, -1, :] is the last position of every sequence seen so far, and it ends
    in a hand-written hard sigmoid. BCELoss, Adam defaults, batch 256 unshuffled as in the thread; the dataset
    replaced by 48-token sequences whose 16 labels say which ids occur at least 3 times."""
    d = token_counts()
    model = PortedMultiLabelLSTM()
    train, held = loaders(d, 256, shuffle=False)
    return Setup(model, train, nn.BCELoss(), torch.optim.Adam(model.parameters()), held, "multilabel")


# ---------------------------------------------------------------------------------------------------------------
# TorchLeet's Transformer encoder with batch_first, and FARM's regression head without the squeeze
# ---------------------------------------------------------------------------------------------------------------


class SumTransformer(nn.Module):
    """Linear embedding, nn.TransformerEncoder (2 layers, 2 heads, feed-forward 64), mean over the sequence, Linear."""

    def __init__(self, embed: int = 16, heads: int = 2, layers: int = 2, ff: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Linear(1, embed)
        layer = nn.TransformerEncoderLayer(d_model=embed, nhead=heads, dim_feedforward=ff, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.output_layer = nn.Linear(embed, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transformer(self.embedding(x))  # (N, T, 1) -> (N, T, E), attention over the T steps
        return self.output_layer(x.mean(dim=1))  # (N, E) -> (N, 1)


@case(split="dev", steps=400, source="https://github.com/Exorust/TorchLeet/issues/5")
def seq_fixed_transformer_encoder_batch_first() -> Setup:
    """TorchLeet's Transformer exercise (predict the sum of a random sequence) had high training and test error: the
    issue, confirmed by the maintainer, found nn.TransformerEncoderLayer at its default batch_first=False for
    (batch, seq, 1) data; this is the fix, batch_first=True. 100 sequences of 10 in one batch, MSELoss, Adam lr 1e-3
    as in the exercise, 400 of its 1000 steps; 400 held-out sequences."""
    d = uniform_sums()
    model = SumTransformer()
    train, held = full_batch(d)
    return Setup(model, train, nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=0.001), held, "regression")


@case(split="dev", steps=300, source="https://github.com/deepset-ai/FARM/issues/229")
def seq_fixed_transformer_regressor_logits() -> Setup:
    """FARM's regression head after the fix in the issue (PR #230): the (batch, 1) logits go to MSELoss unsqueezed,
    matching the (batch, 1) labels. The same 2-layer nn.TransformerEncoder stand-in for DistilBERT, batch 32,
    AdamW lr 1e-3."""
    d = review_scores()
    model = TokenTransformerRegressor(vocab=200, length=40)
    train, held = loaders(d, 32)
    return Setup(model, train, nn.MSELoss(), torch.optim.AdamW(model.parameters(), lr=1e-3), held, "regression")
