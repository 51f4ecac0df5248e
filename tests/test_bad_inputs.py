"""The catalogue of inputs users really pass: each is answered by an error that says what was received and how to
fix it, or by a report that names what it measured, never by a traceback from inside torch or a false "healthy"."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import torchmedic
from torchmedic import InputError, ModelError, TorchMedicWarning
from torchmedic.render.text import plain


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


X, Y = torch.randn(128, 8), torch.randint(0, 3, (128,))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def batches(x: torch.Tensor = X, y: torch.Tensor = Y, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]


def test_a_one_sample_loader_is_refused_with_the_reason() -> None:
    loader = DataLoader(TensorDataset(X[:1], Y[:1]))
    with pytest.raises(InputError, match="one sample: a constant output fits a single sample exactly"):
        torchmedic.diagnose(mlp(), loader, nn.CrossEntropyLoss(), budget_s=5)
    with pytest.raises(InputError, match="one sample"):
        torchmedic.repair(mlp(), loader, nn.CrossEntropyLoss(), budget_s=5)


def test_two_samples_are_enough_to_run() -> None:
    report = torchmedic.diagnose(mlp(), DataLoader(TensorDataset(X[:2], Y[:2])), nn.CrossEntropyLoss(), budget_s=5)
    assert report.symptom is not None


def test_targets_as_python_lists_are_read_as_tensors() -> None:
    loader = [(x, y.tolist()) for x, y in batches()]
    report = torchmedic.diagnose(mlp(), loader, nn.CrossEntropyLoss(), budget_s=5)
    assert report.task == "multiclass"


class ChannelsLast(Dataset):
    """uint8 images as numpy and PIL give them: (H, W, C)."""

    def __init__(self) -> None:
        self.x = torch.randint(0, 256, (64, 8, 8, 3), dtype=torch.uint8)
        self.y = torch.randint(0, 3, (64,))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def test_channels_last_uint8_images_are_named_with_the_permute() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 3))
    with pytest.raises(ModelError, match=r"\(N, H, W, C\).*permute\(0, 3, 1, 2\).*255"):
        torchmedic.diagnose(model, DataLoader(ChannelsLast(), batch_size=16), nn.CrossEntropyLoss(), budget_s=5)


def test_a_model_on_the_meta_device_is_refused_before_anything_runs() -> None:
    with pytest.raises(InputError, match=r"0\.weight is on the meta device.*to_empty"):
        torchmedic.diagnose(mlp().to("meta"), batches(), nn.CrossEntropyLoss(), budget_s=5)


def test_data_on_the_meta_device_is_refused_with_its_shape() -> None:
    loader = [(x.to("meta"), y) for x, y in batches()]
    with pytest.raises(InputError, match=r"meta device: it has a shape \(16, 8\) but no values"):
        torchmedic.diagnose(mlp(), loader, nn.CrossEntropyLoss(), budget_s=5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device besides the CPU")
def test_a_model_on_cuda_with_data_on_the_cpu_is_diagnosed_on_the_models_device() -> None:
    model = mlp().cuda()
    report = torchmedic.diagnose(model, batches(), nn.CrossEntropyLoss(), budget_s=5)
    assert report.symptom is not None and next(model.parameters()).is_cuda


def test_a_half_model_on_float_inputs_names_both_dtypes_and_the_casts() -> None:
    with pytest.raises(ModelError, match=r"float16 weights but the model input is torch\.float32.*x\.to"):
        torchmedic.diagnose(mlp().half(), batches(), nn.CrossEntropyLoss(), budget_s=5)


def test_a_bfloat16_model_and_data_are_audited_without_a_failing_probe() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TorchMedicWarning)  # a probe that fails warns: none may
        report = torchmedic.diagnose(mlp().bfloat16(), batches(X.bfloat16()), nn.CrossEntropyLoss(), budget_s=5)
    assert report.symptom is not None
    assert not any(s.startswith("data_audit") for s in report.skipped)


def test_one_nan_weight_is_found() -> None:
    model = mlp()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    report = torchmedic.diagnose(model, batches(), nn.CrossEntropyLoss(), budget_s=5)
    assert report.causes[0] == "init.nonfinite"


class Corrupt(Dataset):
    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i >= 16:
            raise ValueError(f"cannot decode image {i}.png")
        return X[i], Y[i]


def test_a_crashing_loader_worker_is_one_line_with_the_way_to_see_more() -> None:
    loader = DataLoader(Corrupt(), batch_size=16, num_workers=2)
    with pytest.raises(InputError) as caught:
        torchmedic.diagnose(mlp(), loader, nn.CrossEntropyLoss(), budget_s=5)
    message = str(caught.value)
    assert "ValueError: cannot decode image" in message and "num_workers=0" in message
    assert "Traceback" not in message


def test_a_budget_too_small_for_the_trial_is_not_called_healthy() -> None:
    """A model whose first probes use up the budget: nothing is measured, so nothing is judged healthy."""
    big = nn.Sequential(nn.Linear(8, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 3))
    report = torchmedic.diagnose(big, batches(), nn.CrossEntropyLoss(), budget_s=0.05)
    assert report.symptom is None
    assert not report.healthy and not report.broken
    assert "not measured" in plain(report) and "larger budget" in plain(report)


class InPlaceAfterReLU(nn.Module):
    """`h += 1` changes the ReLU output that autograd saved for ReLU's gradient: the backward fails."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        h += 1
        return self.b(h)


def test_a_backward_broken_by_an_in_place_op_names_the_line_and_the_fix() -> None:
    model = InPlaceAfterReLU()
    for run in (torchmedic.diagnose, torchmedic.repair):
        with pytest.raises(ModelError) as caught:
            run(model, batches(), nn.CrossEntropyLoss(), budget_s=5)
        message = str(caught.value)
        assert "in-place operation" in message and "out of place" in message
        assert "'h = torch.relu(self.a(x))' (test_bad_inputs.py:" in message
    assert all(p.grad is None for p in model.parameters())
