"""How the doctor reads a loss and its task: which losses are binary, which are unbounded below, what shapes a loss
compares inside, and when a far-off start is divergence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchmedic
from torchmedic.config import DiagnoseConfig
from torchmedic.metrics import Metrics
from torchmedic.probes.init_loss import inner_shapes, unbounded_below
from torchmedic.symptom import CONSTANT, DIVERGED, read_symptom
from torchmedic.task import binary_reading, infer_task
from torchmedic.thresholds import Thresholds
from torchmedic.trial import Training, TrialResult
from torchmedic.wrappers import ReshapedTargets

from setups import adam, digits, loader, mlp

Y = torch.tensor([0, 3, 9, 1])


def log_of_probabilities(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(torch.log(p), y)


def test_a_multiclass_log_loss_is_not_read_as_binary() -> None:
    """-log(0.5) is ln 2 for a multi-class log loss too: only one output per target is read as binary."""
    assert binary_reading(log_of_probabilities, torch.full((4, 10), 0.5), Y) is None
    assert binary_reading(nn.BCELoss(), torch.full((4, 1), 0.5), torch.ones(4, 1)) == "probabilities"
    assert binary_reading(nn.BCEWithLogitsLoss(), torch.zeros(4, 1), torch.ones(4, 1)) == "logits"


def test_integer_zero_one_targets_a_loss_casts_make_a_binary_task() -> None:
    task = infer_task(lambda out, y: F.binary_cross_entropy(out, y.float()), torch.full((4,), 0.5), Y.clamp(max=1))
    assert (task.kind, task.threshold) == ("binary", 0.5)


def test_unbounded_below_in_the_models_own_output_space() -> None:
    """A loss that takes the log of softmax outputs is bounded where those outputs go; one on raw scores is not."""
    probabilities = torch.softmax(torch.randn(4, 10), dim=1)
    assert not unbounded_below(log_of_probabilities, probabilities, Y)
    assert unbounded_below(nn.NLLLoss(), torch.randn(4, 10), Y)
    assert not unbounded_below(nn.NLLLoss(), torch.log_softmax(torch.randn(4, 10), dim=1), Y)
    assert not unbounded_below(nn.CrossEntropyLoss(), torch.randn(4, 10), Y)


def test_the_shapes_torchs_size_warning_names() -> None:
    message = (
        "Using a target size (torch.Size([32, 1])) that is different to the input size (torch.Size([32])). This "
        "will likely lead to incorrect results due to broadcasting."
    )
    assert inner_shapes(message) == ([32], [32, 1])
    assert inner_shapes("some other warning") is None


class SqueezingHead(nn.Module):
    """A regression head whose loss squeezes its (N, 1) output to (N,) and compares it with (N, 1) targets."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(classes=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out.squeeze(-1), y)


@pytest.mark.filterwarnings("ignore:Using a target size")
def test_a_broadcast_inside_the_loss_is_found_and_fixed_by_its_inner_shape() -> None:
    x, labels = digits()
    model = SqueezingHead()
    report = torchmedic.diagnose(model, loader(x, labels.float().unsqueeze(1)), model.loss, adam(model))
    finding = next(f for f in report.findings if f.cause == "loss.shape_broadcast")
    assert f"reshaped to [{DiagnoseConfig().max_trial_batch}] inside the loss" in finding.summary
    assert "y.view(-1)" in finding.fix.code
    fixed = ReshapedTargets(model.loss, ())
    out, y = torch.randn(8, 1), torch.randn(8, 1)
    assert torch.allclose(fixed(out, y), F.mse_loss(out, y))  # no [8, 8] broadcast left


def _trial(first: float, last: float, held_loss: float) -> TrialResult:
    """A trial whose training loss went from `first` to `last`, measured against a best constant loss of 1."""
    losses = [first + (last - first) * i / 29 for i in range(30)]
    held = Metrics(loss=held_loss, floor=1.0, output_std=1.0)
    train = Metrics(loss=last, floor=1.0, output_std=1.0)
    return TrialResult("t", 1e-3, 0.1, Training(steps=30, losses=losses), train, held)


def test_a_far_off_start_that_steps_close_in_on_is_not_divergence() -> None:
    """Held-out loss 8x the constant's: diverged when training did not descend; stuck when it fell from far off."""
    task = infer_task(nn.MSELoss(), torch.zeros(4, 1), torch.randn(4, 1))
    t = Thresholds()
    assert read_symptom(_trial(35.0, 8.0, 8.0), task, t).kind == CONSTANT
    assert read_symptom(_trial(8.0, 8.0, 8.0), task, t).kind == DIVERGED


class WrappedCrossEntropy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ce = nn.CrossEntropyLoss(label_smoothing=0.1)

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.ce(out, y)


@pytest.mark.parametrize(
    ("loss_fn", "kind"),
    [
        (WrappedCrossEntropy(), "cross_entropy"),
        (lambda out, y: F.nll_loss(out, y), "nll"),
        (lambda out, y: F.nll_loss(F.log_softmax(out, 1), y), "softmax_like"),
        (lambda out, y: F.cross_entropy(out, y) + 0.1 * F.mse_loss(out, torch.zeros_like(out)), "unknown"),
    ],
)
def test_a_hand_written_loss_is_read_by_the_torch_loss_it_calls(loss_fn: object, kind: str) -> None:
    """One torch loss on the prediction and targets as given names the kind; a transformed prediction or a second
    loss term does not (then the loss's behaviour decides: log_softmax first is shift-invariant, a penalty on the
    logits is not)."""
    task = infer_task(loss_fn, torch.randn(4, 10), Y)  # type: ignore[arg-type]
    assert (task.kind, task.loss_kind) == ("multiclass", kind)
