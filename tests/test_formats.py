"""diagnose() on the shapes real projects have: tuple and dict outputs, token ids, segmentation maps, multi-label
and one-hot targets. It must run its trials on them and raise no false alarm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchmedic

from setups import PATIENT_BUDGET_S, digit_images


def cnn(out: int = 10, *tail: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, out), *tail
    )


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = cnn()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.body(x)
        return logits, logits.detach()


class DictOut(TupleOut):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {"logits": self.body(x)}


class BagOfTokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(100, 16)
        self.fc = nn.Linear(16, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(tokens))


def loader(x: torch.Tensor, y: torch.Tensor) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))


def images() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digit_images()
    return (x - x.mean()) / x.std(), y


def tuple_out() -> tuple[Any, ...]:
    x, y = images()
    return TupleOut(), loader(x, y), lambda out, t: F.cross_entropy(out[0], t)


def dict_out() -> tuple[Any, ...]:
    x, y = images()
    return DictOut(), loader(x, y), lambda out, t: F.cross_entropy(out["logits"], t)


class KeyedOut(TupleOut):
    """The prediction under 'pred', after a tensor that carries nothing: measuring the first one would see a
    constant output."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        logits = self.body(x)
        return {"features": torch.zeros_like(logits), "pred": logits}


class SecondOfTuple(TupleOut):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.body(x)
        return torch.zeros_like(logits), logits


def keyed_out() -> tuple[Any, ...]:
    x, y = images()
    return KeyedOut(), loader(x, y), lambda out, t: F.cross_entropy(out["pred"], t)


def second_of_tuple() -> tuple[Any, ...]:
    x, y = images()
    return SecondOfTuple(), loader(x, y), lambda out, t: F.cross_entropy(out[1], t)


def tokens() -> tuple[Any, ...]:
    ids = torch.randint(0, 100, (1000, 12), generator=torch.Generator().manual_seed(0))
    return BagOfTokens(), loader(ids, (ids < 50).sum(1).gt(6).long()), nn.CrossEntropyLoss()


def segmentation() -> tuple[Any, ...]:
    x, _ = images()
    masks = (x[:, 0] > 0.5).long() + (x[:, 0] > 1.5).long()
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
    return model, loader(x, masks), nn.CrossEntropyLoss()


def multilabel() -> tuple[Any, ...]:
    x, y = images()
    labels = (F.one_hot(y, 10) + F.one_hot((y + 1) % 10, 10)).float()
    return cnn(), loader(x, labels), nn.BCEWithLogitsLoss()


def one_hot() -> tuple[Any, ...]:
    x, y = images()
    return cnn(), loader(x, F.one_hot(y, 10).float()), nn.CrossEntropyLoss()


@pytest.mark.parametrize(
    "make", [tuple_out, dict_out, keyed_out, second_of_tuple, tokens, segmentation, multilabel, one_hot]
)
def test_healthy_formats_are_trained_and_pass(make: Callable[[], tuple[Any, ...]]) -> None:
    model, data, loss_fn = make()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2 if make is tokens else 1e-3)
    report = torchmedic.diagnose(model, data, loss_fn, optimizer, budget_s=PATIENT_BUDGET_S)
    config = torchmedic.DiagnoseConfig()
    assert report.signals.get("trial.steps") in (config.trial_steps, config.long_trial_steps), report.skipped
    assert report.healthy, report


class KeyedProbabilities(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = cnn(10, nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        probabilities = self.body(x)
        return {"features": torch.zeros_like(probabilities), "pred": probabilities}


def test_the_entry_the_loss_reads_is_the_one_diagnosed() -> None:
    """Probabilities under 'pred' into NLLLoss: found on the entry the loss reads, not on the first one."""
    x, y = images()
    model = KeyedProbabilities()
    loss_fn = lambda out, t: F.nll_loss(out["pred"], t)  # noqa: E731
    report = torchmedic.diagnose(model, loader(x, y), loss_fn, torch.optim.SGD(model.parameters(), lr=0.01))
    assert report.findings[0].cause == "loss.task_mismatch"
    assert "log-probabilities" in report.findings[0].summary


def test_probabilities_into_nll_loss() -> None:
    x, y = images()
    model = cnn(10, nn.Softmax(dim=1))
    report = torchmedic.diagnose(model, loader(x, y), nn.NLLLoss(), torch.optim.SGD(model.parameters(), lr=0.01))
    assert report.findings[0].cause == "loss.task_mismatch"
    assert "log-probabilities" in report.findings[0].summary


def test_sigmoid_before_bce_with_logits() -> None:
    x, y = images()
    model = cnn(1, nn.Sigmoid())
    report = torchmedic.diagnose(
        model,
        loader(x, (y < 5).float().unsqueeze(1)),
        nn.BCEWithLogitsLoss(),
        torch.optim.SGD(model.parameters(), lr=0.01),
    )
    assert report.findings[0].cause == "arch.output_activation"


class FixedView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.max_pool2d(torch.relu(self.conv(x)), 2).view(-1, 8 * 2 * 2))  # 8x4x4 per sample


def test_a_view_with_a_fixed_size_is_batch_mixing_not_a_loss_problem() -> None:
    x, y = images()
    report = torchmedic.diagnose(FixedView(), loader(x, y), nn.CrossEntropyLoss())
    assert report.causes == ["arch.batch_mixing"]
    assert "rows for a batch of" in report.findings[0].summary
