"""Each probe's numbers against a plain torch computation written here."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchmedic
from torchmedic.report import Report
from torchmedic.stats import class_histogram, entropy

from setups import PATIENT_BUDGET_S, digits


def batches(x: torch.Tensor, y: torch.Tensor, size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


TRIAL_BATCH = torchmedic.DiagnoseConfig().max_trial_batch  # trials and probes read the first batch cut to this


def first(data: list) -> tuple[torch.Tensor, torch.Tensor]:
    """The first batch as the probes see it."""
    x, y = data[0]
    return x[:TRIAL_BATCH], y[:TRIAL_BATCH]


def run(model: nn.Module, data: list, loss_fn=None, optimizer=None) -> Report:  # type: ignore[no-untyped-def]
    return torchmedic.diagnose(model, data, loss_fn or nn.CrossEntropyLoss(), optimizer, budget_s=PATIENT_BUDGET_S)


@pytest.fixture
def data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = digits()
    return batches(x[:1024], y[:1024])


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_data_audit_matches_direct_statistics(data: list) -> None:
    report = run(mlp(), data)
    x = torch.cat([b[0] for b in data]).double()
    y = torch.cat([b[1] for b in data])
    s = report.signals
    assert s.get("data.samples_read") == len(x)
    # float32 products summed in float64: exact to ~1e-7 of the data's scale
    assert torch.allclose(torch.tensor(s.get("input.channel_mean"), dtype=torch.float64), x.mean(0), atol=1e-6)
    assert torch.allclose(
        torch.tensor(s.get("input.channel_std"), dtype=torch.float64), x.std(0, unbiased=False), atol=1e-6
    )
    assert s.get("input.min") == pytest.approx(float(x.min())) and s.get("input.max") == pytest.approx(float(x.max()))
    hist = class_histogram(y, 10)
    assert s.get("target.histogram") == hist.tolist()
    assert s.get("target.entropy") == pytest.approx(entropy(hist))
    per_batch = [entropy(class_histogram(b[1], 10)) for b in data]
    assert s.get("target.batch_entropy") == pytest.approx(sum(per_batch) / len(per_batch))
    assert s.get("input.nonfinite") == 0 and s.get("input.duplicate_share") == 0.0


def test_data_audit_counts_duplicates_and_nonfinite(data: list) -> None:
    x, y = (torch.cat(t) for t in zip(*data, strict=True))
    x = x.clone()
    x[10:20] = x[0]  # 10 copies of sample 0
    x[5, 3] = float("nan")
    x[7, 1] = float("inf")
    report = run(mlp(), batches(x, y))
    assert report.signals.get("input.duplicate_share") == pytest.approx(10 / len(x))
    assert report.signals.get("input.nonfinite") == 2


def test_loss_at_init_and_its_references(data: list) -> None:
    model = mlp()
    report = run(model, data)
    x0, y0 = first(data)
    with torch.no_grad():
        expected = F.cross_entropy(model(x0), y0)
    s = report.signals
    assert s.get("loss.init") == pytest.approx(float(expected), rel=1e-5)
    assert s.get("loss.ln_c") == pytest.approx(math.log(10))
    assert s.get("loss.floor") == pytest.approx(entropy(class_histogram(y0, 10)), rel=1e-6)


def test_activations_per_layer(data: list) -> None:
    model = mlp()
    report = run(model, data)
    x0 = first(data)[0]
    with torch.no_grad():
        h = model[0](x0)
        a = model[1](h)
        out = model[2](a)
    s = report.signals
    assert s.get("act.out_std", scope="0") == pytest.approx(float(h.std(0).mean()), rel=1e-5)  # across samples
    assert s.get("act.in_std", scope="2") == pytest.approx(float(a.std()), rel=1e-5)
    assert s.get("act.in_dead", scope="2") == pytest.approx(float((a == 0).all(0).float().mean()))
    assert s.get("act.std_ratio") == pytest.approx(float(out.std(0).mean() / h.std(0).mean()), rel=1e-5)
    assert s.get("input.first_layer_rms") == pytest.approx(float(x0.pow(2).mean().sqrt()), rel=1e-5)


def test_output_diversity_and_softmax_signature(data: list) -> None:
    model = nn.Sequential(mlp(), nn.Softmax(dim=1))
    report = run(model, data)
    with torch.no_grad():
        out = model(first(data)[0])
    s = report.signals
    assert s.get("output.between_std") == pytest.approx(float(out.std(0).mean()), rel=1e-5)
    assert s.get("output.rows_sum_to_one") is True
    assert s.get("output.op") == "softmax" and s.get("output.op_scope") == "1"
    assert s.get("pred.histogram") == class_histogram(out.argmax(1), 10).tolist()


def test_input_sensitivity_and_batch_independence(data: list) -> None:
    model = mlp()
    report = run(model, data)
    assert report.signals.get("batch.mixing") == pytest.approx(0.0, abs=1e-6)
    assert report.signals.get("sensitivity.relative") > 0.05

    class Centered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = mlp()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x - x.mean(0))  # mixes samples

    assert run(Centered(), data).signals.get("batch.mixing") > 1e-3


def test_constant_model_has_no_input_sensitivity(data: list) -> None:
    model = mlp()
    with torch.no_grad():
        model[0].weight.zero_()
    assert run(model, data).signals.get("sensitivity.relative") == 0.0


def test_structure_reads_gains_rows_dropout_and_optimizer(data: list) -> None:
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))
    nn.init.constant_(model[3].weight, 0.1)
    optimizer = torch.optim.SGD(model[3].parameters(), lr=0.1, momentum=0.9)
    s = run(model, data, optimizer=optimizer).signals
    w = model[0].weight
    assert s.get("weight.gain", scope="0") == pytest.approx(float(w.detach().std()) * 64**0.5, rel=1e-5)
    assert s.get("weight.distinct_rows", scope="0") == 32
    assert s.get("weight.distinct_rows", scope="3") == 1
    assert s.get("model.dropout") == {"2": 0.3}
    assert s.get("optim.held") == ["3.bias", "3.weight"]
    assert s.get("optim.unheld_trainable") == ["0.bias", "0.weight"]
    assert s.get("optim.lr") == 0.1 and s.get("optim.momentum") == 0.9
    assert s.get("model.following") == {"0": "relu", "3": ""}


def test_functional_output_ops_are_seen(data: list) -> None:
    class Sigmoid(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.fc(x)).view(x.shape[0], -1)

    s = run(Sigmoid(), data).signals
    assert s.get("output.op") == "sigmoid" and s.get("output.logit_op") == "sigmoid"


def test_baseline_trial_matches_a_plain_training_loop(data: list) -> None:
    """The trial's first update/weight ratio and loss equal those of the same SGD step written out here."""
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    report = run(model, data, optimizer=optimizer)
    copy = mlp()
    x0, y0 = first(data)
    loss = F.cross_entropy(copy(x0), y0)
    loss.backward()
    grad_norm = float(torch.cat([copy[0].weight.grad.flatten(), copy[0].bias.grad.flatten()]).norm())
    s = report.signals
    assert s.get("trial.loss_first") == pytest.approx(float(loss.detach()), rel=1e-5)
    assert s.get("grad.norm", scope="0") == pytest.approx(grad_norm, rel=1e-5)
    assert s.get("trial.steps") == torchmedic.DiagnoseConfig().trial_steps
    assert s.get("trial.held_out_gain") > s.get("trial.held_out_gain_before")


def test_overfit_lr_range_and_permutation_run_when_the_trial_is_stuck(data: list) -> None:
    x, y = (torch.cat(t) for t in zip(*data, strict=True))
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(3))]
    model = mlp()
    s = run(model, batches(x, shuffled), optimizer=torch.optim.Adam(model.parameters(), lr=1e-2)).signals
    assert s.get("trial.held_out_gain") < 0.1
    assert s.get("lr_range.flat") is not None
    assert s.get("linear.held_out_gain") < 0.1  # a linear model finds nothing either
    assert s.get("permutation.lr") == pytest.approx(s.get("lr_range.suggestion", 1e-2))  # controls at a good LR
    assert s.get("permutation.real_score") < 0.1 and s.get("permutation.permuted_score") < 0.1


@pytest.mark.parametrize(
    "loss_fn",
    [
        nn.CrossEntropyLoss(),
        nn.CrossEntropyLoss(weight=torch.tensor([0.2, 1.8])),
        nn.CrossEntropyLoss(label_smoothing=0.2),
    ],
)
def test_constant_floor_is_the_best_constant_of_the_loss_as_configured(loss_fn: nn.Module) -> None:
    """Class weights and label smoothing move the best constant away from the label entropy: the floor follows."""
    from torchmedic.floor import constant_floor
    from torchmedic.task import Task

    targets = torch.tensor([0] * 90 + [1] * 10)
    outputs = torch.zeros(100, 2)
    grid = torch.linspace(-8, 8, 3201)  # the constant logit of class 1 (class 0 at 0): a brute-force oracle
    oracle = min(
        float(loss_fn(torch.stack([torch.zeros(100), torch.full((100,), float(g))], 1), targets)) for g in grid
    )
    floor = constant_floor(loss_fn, outputs, targets, Task("binary", "cross_entropy", 2, "test"))
    assert floor == pytest.approx(oracle, abs=2e-3)
    if loss_fn.weight is None and not loss_fn.label_smoothing:
        assert floor == pytest.approx(entropy(class_histogram(targets, 2)), abs=1e-6)


@pytest.mark.parametrize("related", [True, False])
def test_linear_probe_gain_is_significant_only_for_related_labels(related: bool) -> None:
    """Digits' labels give a linear model a held-out gain many standard errors above 0; shuffled ones do not."""
    from torchmedic.probes.linear_probe import _classify

    x, y = digits()
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    if not related:
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    gain, error = _classify(x[:900], y[:900], x[900:], y[900:], 10)
    assert error > 0
    assert (gain >= 3 * error) is related
