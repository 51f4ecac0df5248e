"""diagnose() leaves the user's objects bit-identical, also when it raises or is interrupted, and keeps to its
budget."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_globals
from torch.optim import optimizer as optimizer_globals

import torchmedic

from setups import Setup, healthy_cnn, sick


def snapshot(
    model: nn.Module, optimizer: torch.optim.Optimizer | None, scheduler: Any = None, loader: Any = None
) -> dict[str, Any]:
    """Everything of the user's that torchmedic promises to leave as it was, copied."""
    samplers = (loader, getattr(loader, "sampler", None))
    generators = [g for g in (getattr(s, "generator", None) for s in samplers) if isinstance(g, torch.Generator)]
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "hooks": [_hooks(m) for m in model.modules()],
        "optimizer": None if optimizer is None else copy.deepcopy(optimizer.state_dict()),
        "optimizer_hooks": None if optimizer is None else _hooks(optimizer),
        "scheduler": None if scheduler is None else copy.deepcopy(scheduler.state_dict()),
        "loader_generators": [g.get_state() for g in generators],
        "global_hooks": {owner.__name__: _hooks(owner) for owner in (module_globals, optimizer_globals)},
        "grad_enabled": torch.is_grad_enabled(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }


def _hooks(owner: Any) -> dict[str, dict[int, Any]]:
    """Every hook dict of a module, an optimizer or torch's modules of global hooks (forward, backward, state-dict,
    step hooks), copied."""
    return {name: dict(value) for name, value in vars(owner).items() if "hook" in name and isinstance(value, dict)}


def same(a: Any, b: Any) -> bool:
    """Equal to the bit, through dicts, lists and tuples; NaN equals NaN."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
            return False
        return torch.equal(a, b) or (a.is_floating_point() and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two snapshots agree on every key; the assertion names the first that differs."""
    for key in a:
        assert same(a[key], b[key]), key


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
