"""diagnose() leaves the user's objects bit-identical, also when it raises or is interrupted, and keeps to its
budget."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import torchmedic

from setups import Setup, healthy_cnn, sick


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "hooks": [
            (dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._backward_hooks)) for m in model.modules()
        ],
        "opt_state": None
        if optimizer is None
        else [
            {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()} for s in optimizer.state.values()
        ],
        "opt_groups": None
        if optimizer is None
        else [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups],
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
    }


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in ("params", "buffers"):
        assert all(torch.equal(x, y) for x, y in zip(a[key], b[key], strict=True)), key
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(a["grads"], b["grads"], strict=True))
    for key in ("requires_grad", "modes", "hooks", "opt_groups", "python_rng"):
        assert a[key] == b[key], key
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    assert np.array_equal(a["numpy_rng"], b["numpy_rng"])
    if a["opt_state"] is not None:
        for sa, sb in zip(a["opt_state"], b["opt_state"], strict=True):
            assert all(torch.equal(sa[k], sb[k]) if isinstance(sa[k], torch.Tensor) else sa[k] == sb[k] for k in sa)


def trained(setup: Setup) -> Setup:
    """The setup after a few real steps, so the optimizer has state and the model has grads and a hook."""
    assert setup.optimizer is not None
    for i, (x, y) in enumerate(setup.loader):
        setup.optimizer.zero_grad()
        setup.loss_fn(setup.model(x), y).backward()
        setup.optimizer.step()
        if i == 2:
            break
    setup.model.register_forward_hook(lambda *args: None)
    setup.model.eval()
    return setup


@pytest.mark.parametrize("make", [healthy_cnn, lambda: sick("lr.too_high"), lambda: sick("data.class_imbalance")])
def test_state_is_bit_identical_after_diagnose(make: Any) -> None:
    setup = trained(make())
    before = snapshot(setup.model, setup.optimizer)
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer)
    assert_same(before, snapshot(setup.model, setup.optimizer))
    json.dumps(report.to_dict())  # JSON-safe, NaN and Inf included


class Fails:
    """A loss that works `after` times, then raises `error`."""

    def __init__(self, error: BaseException, after: int) -> None:
        self.error, self.after, self.calls = error, after, 0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.after:
            raise self.error
        return nn.functional.cross_entropy(outputs, targets)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), MemoryError("out of memory")])
def test_state_is_restored_when_diagnose_is_interrupted(error: BaseException) -> None:
    setup = trained(healthy_cnn())
    before = snapshot(setup.model, setup.optimizer)
    with pytest.raises(type(error)):
        torchmedic.diagnose(setup.model, setup.loader, Fails(error, after=12), setup.optimizer)
    assert_same(before, snapshot(setup.model, setup.optimizer))


def test_a_tiny_budget_reports_what_it_skipped() -> None:
    setup = sick("lr.too_low")
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer, budget_s=0.01)
    assert report.skipped
    assert all("budget" in s for s in report.skipped)


def test_default_optimizer_is_said() -> None:
    setup = healthy_cnn()
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn)
    assert any("Adam(lr=1e-3)" in note for note in report.notes)


def test_report_is_complete() -> None:
    setup = sick("loss.double_softmax")
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer)
    data = report.to_dict()
    assert data["healthy"] is False and data["findings"][0]["cause"] == "loss.double_softmax"
    names = {s.name for s in report.signals}
    for probe_signal in (
        "input.channel_mean",
        "loss.init",
        "loss.ln_c",
        "act.in_std",
        "output.between_std",
        "sensitivity.relative",
        "batch.mixing",
        "trial.held_out_gain",
        "grad.norm",
        "update.ratio",
    ):
        assert probe_signal in names, probe_signal
    assert "loss.double_softmax" in str(report)


def test_the_loaders_own_generator_is_restored() -> None:
    """A DataLoader shuffling with its own generator gives the user the same next epoch as without diagnose."""
    setup = sick("lr.too_low")
    loader = torch.utils.data.DataLoader(
        setup.loader.dataset, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(5)
    )
    expected = torch.Generator().manual_seed(5).get_state()
    torchmedic.diagnose(setup.model, loader, setup.loss_fn, setup.optimizer)
    assert torch.equal(loader.generator.get_state(), expected)


def test_a_trained_model_with_a_vanished_signal_is_diagnosed() -> None:
    setup = trained(sick("init.too_small"))
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer)
    assert report.causes[:1] == ["init.too_small"]
