"""Bad input gets a clear error naming the problem, never a traceback from deep inside torch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import torchmedic
from torchmedic.errors import InputError, LossError, ModelError


class SimpleCNN(nn.Module):
    """The forum answer's model: sized for 28x28 inputs, fed 32x32 CIFAR images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.fc = nn.Linear(16 * 14 * 14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        return self.fc(torch.flatten(x, 1))


def cifar_like(n: int = 32, size: int = 32) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 3, size, size), torch.randint(0, 10, (n,))), batch_size=8)


def test_flatten_mismatch_names_layer_shapes_and_the_size_that_fits() -> None:
    with pytest.raises(ModelError) as info:
        torchmedic.diagnose(SimpleCNN(), cifar_like(), nn.CrossEntropyLoss())
    message = str(info.value)
    assert "'fc'" in message and "Linear" in message
    assert "3136" in message and "4096" in message
    assert "(8, 3, 32, 32)" in message
    assert "28x28" in message


def test_the_same_model_on_28x28_inputs_works() -> None:
    report = torchmedic.diagnose(SimpleCNN(), cifar_like(size=28), nn.CrossEntropyLoss(), budget_s=5)
    assert isinstance(report, torchmedic.Report)


def test_channel_mismatch_names_the_conv() -> None:
    loader = DataLoader(TensorDataset(torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))), batch_size=8)
    with pytest.raises(ModelError, match=r"'conv1' \(Conv2d\) expects 3 input channels but got 1"):
        torchmedic.diagnose(SimpleCNN(), loader, nn.CrossEntropyLoss())


def test_a_model_that_raises_is_named() -> None:
    class Raises(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("forgot to implement")

    loader = [(torch.randn(4, 4), torch.randint(0, 2, (4,)))]
    with pytest.raises(ModelError, match="forgot to implement"):
        torchmedic.diagnose(Raises(), loader, nn.CrossEntropyLoss())


@pytest.mark.parametrize(
    ("loader", "message"),
    [
        ([], "yielded no batches"),
        ([("not", "tensors")], "not a tensor"),
        ([{"foo": torch.randn(2)}], "keys"),
        (iter([(torch.randn(2, 4), torch.zeros(2))]), "one-shot"),
        (torch.randn(8, 4), "Tensor of shape \\(8, 4\\), not a loader"),
    ],
)
def test_bad_loaders(loader: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        torchmedic.diagnose(nn.Linear(4, 2), loader, nn.CrossEntropyLoss())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "loss_fn", "optimizer", "message"),
    [
        ("not a model", nn.MSELoss(), None, "not a torch.nn.Module"),
        (nn.Linear(4, 2), 3, None, "cannot be called"),
        (nn.Linear(4, 2), nn.MSELoss(), "sgd", "not a torch.optim.Optimizer"),
        (nn.ReLU(), nn.MSELoss(), None, "no parameters"),
    ],
)
def test_bad_arguments(model: object, loss_fn: object, optimizer: object, message: str) -> None:
    loader = [(torch.randn(4, 4), torch.randn(4, 2))]
    with pytest.raises(InputError, match=message):
        torchmedic.diagnose(model, loader, loss_fn, optimizer)  # type: ignore[arg-type]


class SharedIterator(IterableDataset):
    """An IterableDataset whose __iter__ hands out one iterator: a second pass over it yields nothing."""

    def __init__(self, n: int) -> None:
        self.items = iter([(torch.randn(4), i % 2) for i in range(n)])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        return self.items


def test_a_loader_that_can_be_read_once_is_refused_unread() -> None:
    loader = DataLoader(SharedIterator(64), batch_size=16)
    with pytest.raises(InputError, match="same iterator from every __iter__ call"):
        torchmedic.diagnose(nn.Linear(4, 2), loader, nn.CrossEntropyLoss())
    assert sum(len(y) for _, y in loader) == 64  # the user's own loop still gets every sample


def test_a_loss_per_sample_is_refused() -> None:
    loader = [(torch.randn(16, 4), torch.randint(0, 2, (16,))) for _ in range(4)]
    with pytest.raises(LossError, match=r"shape \(16,\), not one number.*reduction='mean'"):
        torchmedic.diagnose(nn.Linear(4, 2), loader, nn.CrossEntropyLoss(reduction="none"))
    report = torchmedic.diagnose(nn.Linear(4, 2), loader, lambda o, y: F.cross_entropy(o, y, reduction="none").mean())
    assert report.task == "multiclass"


def test_dict_batches_and_extra_items_work() -> None:
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    dicts = [{"image": x[i : i + 16], "label": y[i : i + 16], "id": i} for i in range(0, 64, 16)]
    triples = [(x[i : i + 16], y[i : i + 16], "meta") for i in range(0, 64, 16)]
    for loader in (dicts, triples):
        report = torchmedic.diagnose(model, loader, nn.CrossEntropyLoss(), budget_s=5)
        assert report.task == "multiclass"


def test_bare_tensor_loader_is_an_autoencoder() -> None:
    x = torch.randn(64, 6)
    model = nn.Sequential(nn.Linear(6, 3), nn.ReLU(), nn.Linear(3, 6))
    report = torchmedic.diagnose(model, [x[i : i + 16] for i in range(0, 64, 16)], nn.MSELoss(), budget_s=5)
    assert report.task == "regression"
