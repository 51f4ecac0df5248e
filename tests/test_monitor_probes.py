"""Each probe's numbers equal a plain torch computation of the same quantity on the same step."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchmedic import TorchMedicWarning, stats
from torchmedic.monitor import Monitor, MonitorConfig
from torchmedic.signals import Signals


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def close(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return math.isclose(float(a), float(b), rel_tol=1e-4, abs_tol=1e-6)


def run(
    steps: int, *, batch: int = 16, zero_grad: bool = True, decay: float = 0.0, scheduler: bool = False
) -> tuple[Signals, dict[str, Any]]:
    """Train a small MLP with every step sampled; return the signals of the last step and an oracle of it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5))
    with torch.no_grad():
        model[0].bias[:4] = -50.0  # four dead units
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=decay)
    schedule = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.1) if scheduler else None
    x = torch.randn(64, 12) * 2 + 1
    y = torch.randint(0, 5, (64,))
    oracle: dict[str, Any] = {}
    with Monitor(model, opt, config=MonitorConfig(every=1)) as monitor:
        for step in range(steps):
            xb, yb = x[step * batch % 64 :][:batch], y[step * batch % 64 :][:batch]
            params = list(model.parameters())
            stale = [p.grad.abs().max() if p.grad is not None else None for p in (params[0], params[-1])]
            if zero_grad:
                opt.zero_grad()
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            before = [p.detach().clone() for p in params]
            grads = [p.grad.norm() for p in params]
            hidden = model[0](xb)
            opt.step()
            if schedule is not None:
                schedule.step()
            monitor.log(loss=loss, outputs=out, targets=yb)
            oracle = {
                "x": xb,
                "y": yb,
                "out": out.detach(),
                "loss": loss.item(),
                "grads": grads,
                "before": before,
                "after": [p.detach().clone() for p in params],
                "hidden": hidden.detach(),
                "stale": stale,
                "grad0": params[0].grad.clone(),
            }
    return monitor.signals, oracle


def test_gradient_and_update_probes_match_torch() -> None:
    s, o = run(3)
    names = ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert close([s.get("grad.norm", scope=n) for n in names], o["grads"])
    assert close(s.get("grad.norm"), torch.stack(o["grads"]).norm())
    ratios = [(a - b).norm() / b.norm() for a, b in zip(o["after"], o["before"], strict=True)]
    assert close([s.get("update.ratio", scope=n) for n in names], ratios)
    assert close(s.get("update.ratio_max"), max(ratios[0], ratios[2]))
    assert close([s.get("weight.norm", scope=n) for n in names], [b.norm() for b in o["before"]])
    rows_dead = (o["grad0"].abs().amax(dim=1) == 0).float().mean()
    assert close(s.get("grad.dead_fraction", scope="0.weight"), rows_dead) and rows_dead >= 4 / 16
    w = o["before"][0]
    assert close(s.get("weight.row_spread", scope="0.weight"), (w - w[:1]).abs().max() / w.abs().max())
    assert s.get("grad.carried_over") is False


def test_activation_input_and_output_probes_match_torch() -> None:
    s, o = run(2)
    hidden, x, out, y = o["hidden"], o["x"], o["out"], o["y"]
    assert close(s.get("act.std", scope="0"), hidden.std()) and close(s.get("act.mean", scope="0"), hidden.mean())
    assert close(s.get("act.between_std", scope="0"), stats.between_sample_std(hidden))
    assert close(s.get("act.dead_fraction", scope="1"), stats.dead_fraction(hidden.relu()))
    assert s.get("act.layers") == ["0", "1", "2"]
    assert close(s.get("input.mean"), x.mean()) and close(s.get("input.std"), x.std())
    assert close(s.get("input.abs_max"), x.abs().max()) and s.get("input.finite") == 1.0
    assert close(s.get("input.channel_mean"), x.mean(0).tolist())
    assert close(s.get("input.channel_std"), x.std(0).tolist())
    assert close(s.get("input.between_std"), stats.between_sample_std(x))
    assert close(s.get("output.between_std"), stats.between_sample_std(out))
    assert close(s.get("output.row_sum_dev"), (out.sum(1) - 1).abs().mean())
    assert close(s.get("pred.hist"), stats.class_histogram(out.argmax(1), 5).tolist())
    assert close(s.get("target.hist"), stats.class_histogram(y, 5).tolist())
    assert close(s.get("loss"), o["loss"]) and close(s.get("loss.ce_on_outputs"), o["loss"])
    assert s.get("output.shape") == [16, 5] and s.get("target.kind") == "index"


def test_statistics_read_the_first_samples_of_large_batches() -> None:
    s, o = run(2, batch=40)
    x = o["x"][:16]
    assert close(s.get("input.std"), x.std()) and close(s.get("act.std", scope="0"), o["hidden"][:16].std())
    assert close(s.get("pred.hist"), stats.class_histogram(o["out"].argmax(1), 5).tolist())  # every prediction


def test_carried_gradients_are_the_stale_ones() -> None:
    s, o = run(3, zero_grad=False)
    assert close(s.get("grad.stale_min"), min(o["stale"]))
    assert s.get("grad.backwards") == 2  # first and last parameter, one backward


def test_optimizer_and_history_signals() -> None:
    s, _ = run(5, decay=0.01, scheduler=True)
    assert close(s.get("lr", scope="group0"), 0.1 * 0.1**4) and close(s.get("lr.peak", scope="group0"), 0.1)
    assert s.get("lr.decade_steps") == {"1": 2, "2": 3, "3": 4, "4": 5}
    assert s.get("optim.weight_decay") == 0.01 and s.get("optim.foreign") == 0 and s.get("optim.unheld") == 0
    assert s.get("mode.training") is True and s.get("monitor.sampled_steps") == 5
    assert len(s.get("loss.series")) == MonitorConfig().window


def test_load_probe_counts_missing_keys() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Monitor(model, opt, every=1) as monitor:
        state = {k: v for k, v in model.state_dict().items() if k.startswith("0.")}
        result = model.load_state_dict(state, strict=False)
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
    s = monitor.signals
    expected = len(model.state_dict())
    assert s.get("load.expected") == expected
    assert close(s.get("load.missing_fraction"), len(result.missing_keys) / expected)
    assert s.get("load.missing") == len(result.missing_keys) >= 4
    assert s.get("load.missing_keys")[:1] == ["1.weight"]


class FunctionalHead(nn.Module):
    """A Linear whose output forward clamps with a function, not a module."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(x))


def test_outputs_probe_reads_targets_that_are_no_labels_of_the_outputs() -> None:
    """(N, C) outputs logged with (N, T) token targets (a dict's first tensor, not what the loss read): the probe
    measures them and does not try cross-entropy between the two."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TorchMedicWarning)
        with Monitor(model, opt, every=1) as monitor:
            for _ in range(3):
                opt.zero_grad()
                out = model(torch.randn(8, 4))
                loss = out.square().mean()
                loss.backward()
                opt.step()
                monitor.log(loss=loss, outputs=out, targets=torch.randint(0, 3, (8, 5)))
    assert monitor.signals.get("loss.ce_on_outputs") is None
    assert monitor.signals.get("output.shape") == [8, 3]


@pytest.mark.parametrize(
    ("model", "final"),
    [
        (nn.Sequential(nn.Linear(12, 5), nn.Softmax(dim=1)), "Softmax"),
        (nn.Sequential(nn.Linear(12, 5), nn.ReLU()), "ReLU"),
        (nn.Sequential(nn.Linear(12, 5)), "Linear"),
        (FunctionalHead(), ""),
    ],
)
def test_final_module_is_the_layer_that_returned_the_output(model: nn.Module, final: str) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hooks = len(model._forward_hooks)
    with Monitor(model, opt, config=MonitorConfig(every=1)) as monitor:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(torch.randn(8, 12)), torch.randint(0, 5, (8,))).backward()
            opt.step()
        assert monitor.signals.get("output.final_module") == final
    assert len(model._forward_hooks) == hooks
    assert all(not m._forward_hooks for m in model.modules())


class FeaturesAndPrediction(nn.Module):
    """Returns {'features', 'pred'}: the first tensor is not the prediction the loss reads."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(4, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = F.relu(self.body(x))
        return {"features": features, "pred": self.head(features)}


def _train_dict_model(log: str, aux: float = 0.0) -> tuple[Signals, list[str]]:
    torch.manual_seed(0)
    model = FeaturesAndPrediction()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Monitor(model, opt, every=1) as monitor:
            for _ in range(4):
                y = torch.randint(0, 3, (8,))
                opt.zero_grad()
                out = model(torch.randn(8, 4))
                loss = F.cross_entropy(out["pred"], y) + aux * out["features"].square().mean()
                loss.backward()
                opt.step()
                if log == "loss":
                    monitor.log(loss=loss, targets=y)
                elif log == "outputs":
                    monitor.log(loss=loss, outputs=out, targets=y)
    return monitor.signals, [str(w.message) for w in caught if issubclass(w.category, TorchMedicWarning)]


@pytest.mark.parametrize(("log", "aux"), [("loss", 0.0), ("outputs", 0.0), ("loss", 0.1)])
def test_of_several_output_tensors_the_one_the_loss_reads_is_measured(log: str, aux: float) -> None:
    """The loss's graph names the prediction; an auxiliary term on the features (which reach the loss through the
    head too) does not make them the prediction."""
    signals, warned = _train_dict_model(log, aux)
    assert signals.get("output.shape") == [8, 3]
    assert signals.get("pred.hist") is not None
    assert warned == []


def test_several_output_tensors_without_a_logged_loss_are_named_once() -> None:
    signals, warned = _train_dict_model("none")
    assert signals.get("output.shape") == [8, 16]
    assert len(warned) == 1
    assert "('features', 'pred')" in warned[0] and "outputs['features']" in warned[0]
