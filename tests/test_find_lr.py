"""The LR range test: suggest_lr on synthetic curves with known answers, find_lr on real tiny models."""

from __future__ import annotations

import copy
import math
import pickle
import random
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader, TensorDataset

from torchmedic import InputError, LossError, ModelError, find_lr, plot_lr, suggest_lr
from torchmedic.batch import Batch
from torchmedic.clone import OptimizerSpec, clone_model
from torchmedic.remedies import FLAT_MESSAGE, MissingDependencyError, StopReason, range_test
from torchmedic.remedies.lr_finder import RangeTestConfig
from torchmedic.remedies.lr_suggestion import SuggestConfig

X = np.linspace(-7, 1, 100)  # log10 of 100 LRs from 1e-7 to 10, as find_lr's defaults
LRS = 10**X


def curve(x: np.ndarray, steep: float = -2.5, width: float = 0.3, blowup: float = -0.5) -> np.ndarray:
    """A range-test shape: a plateau, a sigmoid descent centred at `steep`, then an exponential blow-up."""
    return 2.3 - 2.0 / (1 + np.exp(-(x - steep) / width)) + 0.5 * np.exp((x - blowup) / 0.25)


def expected_log_lr(steep: float = -2.5, blowup: float = -0.5) -> float:
    """The documented rule on the noise-free function: mean of log10(steepest) and log10(lr at the minimum / 3)."""
    fine = np.linspace(-7, 1, 200_001)
    values = curve(fine, steep, blowup=blowup)
    lowest = int(np.argmin(values))
    steepest = int(np.argmin(np.gradient(values, fine)[:lowest]))
    return (fine[steepest] + fine[lowest] - math.log10(SuggestConfig().minimum_divisor)) / 2


@pytest.mark.parametrize(("steep", "blowup"), [(-2.5, -0.5), (-4.0, -1.5), (-1.0, 0.6)])
def test_clean_curve_gives_the_rule_applied_to_the_true_function(steep: float, blowup: float) -> None:
    found = suggest_lr(LRS, curve(X, steep, blowup=blowup))
    assert not found.flat and found.suggestion is not None
    assert math.log10(found.suggestion) == pytest.approx(expected_log_lr(steep, blowup), abs=0.1)
    assert dict(found.candidates)["steepest"] == pytest.approx(10**steep, rel=10**0.1 - 1)
    assert 0 < found.confidence <= 1
    assert "log10(lr)" in found.method


@pytest.mark.parametrize("seed", range(6))
def test_noisy_curve_with_spikes_stays_near_the_clean_answer(seed: int) -> None:
    rng = np.random.default_rng(seed)
    losses = curve(X) + rng.normal(0, 0.1, X.size)  # noise std 5% of the fall
    losses[rng.choice(X.size, 4, replace=False)] += 1.5  # single-batch spikes
    found = suggest_lr(LRS, losses)
    assert found.suggestion is not None
    assert math.log10(found.suggestion) == pytest.approx(expected_log_lr(), abs=0.3)
    assert found.confidence < suggest_lr(LRS, curve(X)).confidence


@pytest.mark.parametrize("seed", range(6))
def test_flat_noisy_curve_is_flat_and_makes_up_no_number(seed: int) -> None:
    losses = 2.3 + np.random.default_rng(seed).normal(0, 0.05, X.size)
    found = suggest_lr(LRS, losses)
    assert found.flat and found.suggestion is None and found.confidence == 0
    assert FLAT_MESSAGE in found.message


def test_a_curve_that_only_rises_is_flat_and_says_to_start_lower() -> None:
    found = suggest_lr(LRS, 2.3 + 0.5 * np.exp((X + 2) / 0.5))
    assert found.flat and found.suggestion is None
    assert "lower start_lr" in found.message


def test_a_diverging_curve_is_read_up_to_its_first_nonfinite_loss() -> None:
    losses = curve(X)
    cut = int(np.searchsorted(X, -0.3))
    losses[cut:] = np.nan
    losses[cut + 3] = np.inf
    found = suggest_lr(LRS, losses)
    assert found.suggestion == pytest.approx(suggest_lr(LRS[:cut], losses[:cut]).suggestion)
    assert all(math.isnan(v) for v in found.smoothed[cut:])


def test_too_short_or_malformed_curves() -> None:
    short = suggest_lr(LRS[:5], curve(X[:5]))
    assert short.suggestion is None and not short.flat and "only 5" in short.message
    with pytest.raises(InputError, match="equal length"):
        suggest_lr(LRS, curve(X)[:-1])


# --- find_lr on real models --------------------------------------------------------------------------------------


def blobs(n: int = 640, seed: int = 0, random_labels: bool = False) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.randn(3, 10, generator=g) * 3
    x = centres[y] + torch.randn(n, 10, generator=g)
    if random_labels:
        y = torch.randint(0, 3, (n,), generator=g)
    return TensorDataset(x, y)


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, object]:
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "modes": [m.training for m in model.modules()],
        "hooks": [len(m._forward_hooks) for m in model.modules()],
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": pickle.dumps(np.random.get_state()),
        "python_rng": random.getstate(),
    }


def assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    def same(a: object, b: object) -> bool:
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
        if isinstance(a, np.ndarray):
            return bool(np.array_equal(a, b))  # type: ignore[arg-type]
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return a == b

    for key in before:
        assert same(before[key], after[key]), key


def used_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum that has already taken a step, so it holds state (momentum buffers) and grads are set."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = blobs(32, seed=5).tensors
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    return optimizer


def test_find_lr_leaves_model_optimizer_and_rngs_bit_identical() -> None:
    model = mlp()
    optimizer = used_optimizer(model)
    model.eval()
    model[0].register_forward_hook(lambda m, a, o: None)
    model[2].bias.requires_grad_(False)
    loader = DataLoader(blobs(), batch_size=32, shuffle=True)  # shuffling draws from torch's generator
    before = snapshot(model, optimizer)
    result = find_lr(model, loader, F.cross_entropy, optimizer, num_iter=60)
    assert_same(before, snapshot(model, optimizer))
    assert len(result.lrs) == len(result.losses) == len(result.smoothed)


def test_find_lr_leaves_everything_as_it_was_when_the_loss_raises() -> None:
    model = mlp()
    optimizer = used_optimizer(model)
    calls = []

    def failing_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 7:
            raise RuntimeError("boom")
        return F.cross_entropy(outputs, targets)

    before = snapshot(model, optimizer)
    with pytest.raises(LossError, match="boom"):
        find_lr(model, DataLoader(blobs(), batch_size=32, shuffle=True), failing_loss, optimizer, num_iter=30)
    assert_same(before, snapshot(model, optimizer))


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.1),
    ],
    ids=["sgd-momentum", "adam", "adamw", "sgd"],
)
def test_find_lr_suggests_an_lr_that_trains(make: object) -> None:
    dataset = blobs()
    model = mlp()
    result = find_lr(model, DataLoader(dataset, batch_size=32, shuffle=True), F.cross_entropy, make(model.parameters()))  # type: ignore[operator]
    assert not result.flat and result.suggestion is not None
    assert result.stop in (StopReason.DIVERGED, StopReason.NONFINITE)  # end_lr=10 is far past any stable LR
    assert len(result.lrs) < 100
    assert np.allclose(np.diff(np.log(result.lrs)), math.log(1e8) / 99)  # exponential schedule
    # Proof that it works: one epoch at the suggested LR trains a fresh copy well.
    trained = clone_model(model)
    optimizer = make(trained.parameters())  # type: ignore[operator]
    for group in optimizer.param_groups:
        group["lr"] = result.suggestion
    for x, y in DataLoader(dataset, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)):
        optimizer.zero_grad()
        F.cross_entropy(trained(x), y).backward()
        optimizer.step()
    x, y = dataset.tensors
    with torch.no_grad():
        assert float(F.cross_entropy(trained(x), y)) < 0.5 * float(F.cross_entropy(model(x), y))


def test_parameter_groups_keep_their_ratio_at_every_step() -> None:
    model = mlp()
    optimizer = torch.optim.Adam([{"params": model[0].parameters(), "lr": 1e-3},
                                  {"params": model[2].parameters(), "lr": 1e-2}])  # fmt: skip
    seen: list[tuple[float, float]] = []

    def record(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]))

    handle = register_optimizer_step_pre_hook(record)
    try:
        result = find_lr(model, DataLoader(blobs(), batch_size=32), F.cross_entropy, optimizer, num_iter=40)
    finally:
        handle.remove()
    assert result.group_ratios == pytest.approx((1.0, 10.0))
    assert len(seen) == len(result.lrs)
    for (first, second), lr in zip(seen, result.lrs, strict=True):
        assert first == pytest.approx(lr) and second == pytest.approx(10 * lr)
    assert optimizer.param_groups[0]["lr"] == 1e-3 and optimizer.param_groups[1]["lr"] == 1e-2


def test_a_short_loader_is_cycled() -> None:
    loader = DataLoader(blobs(96), batch_size=32)  # 3 batches
    result = find_lr(mlp(), loader, F.cross_entropy, None, start_lr=1e-6, end_lr=1e-4, num_iter=20)
    assert len(result.losses) == 20 and result.stop is StopReason.COMPLETED


def test_frozen_model_is_flat() -> None:
    model = mlp()
    for p in model.parameters():
        p.requires_grad_(False)
    result = find_lr(model, DataLoader(blobs(), batch_size=32), F.cross_entropy, None, num_iter=60)
    assert result.flat and result.suggestion is None
    assert FLAT_MESSAGE in result.message


def test_random_labels_from_the_label_entropy_are_flat() -> None:
    # Every step sees new samples whose labels carry no signal, and the model starts at the label prior (zero
    # weights, uniform labels): no LR can make the loss fall; large ones make it rise.
    model = nn.Linear(10, 3)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    loader = DataLoader(blobs(100 * 64, random_labels=True), batch_size=64)
    result = find_lr(model, loader, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), num_iter=100)
    assert result.flat and result.suggestion is None
    control = DataLoader(blobs(100 * 64), batch_size=64)  # the same inputs with their real labels do learn
    result = find_lr(model, control, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), num_iter=100)
    assert not result.flat and result.suggestion is not None


def test_bad_input_gets_clear_errors() -> None:
    loader = DataLoader(blobs(64), batch_size=32)
    with pytest.raises(InputError, match="start_lr < end_lr"):
        find_lr(mlp(), loader, F.cross_entropy, None, start_lr=1.0, end_lr=0.1)
    with pytest.raises(InputError, match="no batches"):
        find_lr(mlp(), [], F.cross_entropy, None)
    with pytest.raises(ModelError, match="step 0"):
        find_lr(mlp(), DataLoader(TensorDataset(torch.randn(8, 7), torch.zeros(8).long())), F.cross_entropy, None)
    with pytest.raises(LossError, match="scalar"):
        find_lr(mlp(), loader, lambda o, t: F.cross_entropy(o, t, reduction="none"), None)


def test_range_test_runs_on_a_copy_and_a_list_of_batches() -> None:
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = [Batch(x, y) for x, y in DataLoader(blobs(), batch_size=32)]
    spec = OptimizerSpec.of(optimizer, model)
    copy_ = clone_model(model)
    result = range_test(copy_, batches, F.cross_entropy, spec, num_iter=50)
    assert len(result.losses) <= 50 and result.optimizer == "SGD"
    assert not torch.equal(next(copy_.parameters()), next(model.parameters()))  # the copy trained, not the model
    with pytest.raises(InputError, match="empty"):
        range_test(clone_model(model), [], F.cross_entropy, spec)


def test_plot_lr_draws_the_result_and_names_the_extra_when_matplotlib_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    result = find_lr(mlp(), DataLoader(blobs(), batch_size=32), F.cross_entropy, None, num_iter=40)
    ax = plot_lr(result)
    assert len(ax.lines) == 3 if result.suggestion is not None else 2
    assert ax.get_xscale() == "log"
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"pip install torchmedic\[plot\]"):
        plot_lr(result)


def test_a_flat_curve_is_checked_by_holding_one_lr_per_decade() -> None:
    # Ten steps over eight decades hold no LR long enough to move the loss: the curve reads flat. Held for those ten
    # steps at one LR per decade, a learnable task shows which LR trains, so the result is not flat.
    model = mlp()
    loader = DataLoader(blobs(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    unchecked = find_lr(
        model, loader, F.cross_entropy, optimizer, num_iter=10, config=RangeTestConfig(check_flat=False)
    )
    checked = find_lr(model, loader, F.cross_entropy, optimizer, num_iter=10)
    assert unchecked.flat and unchecked.suggestion is None
    assert not checked.flat and checked.suggestion is not None and 1e-3 <= checked.suggestion <= 1.0
    assert "one LR per decade" in checked.method and len(checked.candidates) == 5
