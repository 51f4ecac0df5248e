"""`train()`: the run directory it leaves, a resume that continues bit-for-bit, and the pre-flight stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_recipe_data import write_cifar

from torchmedic import InputError, SimpleCNN, TorchMedicWarning, TrainConfig, train
from torchmedic.recipe.datasets import load_data
from torchmedic.remedies.transforms import transforms_for

pytest.importorskip("torchvision")
QUICK = {"preflight": False, "monitor": False}  # the pre-flight and monitor have their own tests below


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """One torch thread: on a shared 2-core machine, two threads per process spin-wait and run ~20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _held_out_accuracy(model: torch.nn.Module) -> float:
    """Digits test accuracy computed here, image by image, with the recipe's test pipeline."""
    data = load_data("digits")
    pipeline = transforms_for(data.stats, data.image_size, augment=False)
    model.eval()
    with torch.no_grad():
        hits = [int(model(pipeline(image)[None]).argmax()) == label for image, label in data.test]
    return sum(hits) / len(hits)


def test_digits_run_leaves_a_complete_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rng = torch.get_rng_state()
    result = train(TrainConfig(epochs=3, preflight=False), out)
    assert torch.equal(torch.get_rng_state(), rng)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.lr_source == "find_lr" and result.lr > 0
    assert result.test_accuracy > 0.6  # three epochs on real digits; chance is 0.1

    for name in ("config.json", "metrics.json", "findings.json", "checkpoint.pt", "model.pt", "monitor.html"):
        assert (out / name).is_file(), name
    record = json.loads((out / "config.json").read_text())
    assert record["resolved"]["lr"] == result.lr
    assert record["resolved"]["normalize"]["source"]
    assert json.loads((out / "metrics.json").read_text()) == result.history

    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 3
    model = SimpleCNN(in_channels=1, num_classes=10, image_size=8)
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert _held_out_accuracy(model) == pytest.approx(result.test_accuracy)


def test_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    config = TrainConfig(epochs=3, **QUICK)
    whole = train(config, tmp_path / "whole")

    def stop_after_first(row: dict[str, float]) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", on_epoch=stop_after_first)
    assert not (tmp_path / "cut" / "model.pt").exists()
    torch.manual_seed(123)  # whatever the caller's RNG holds, the run continues from its own saved states
    resumed = train(None, tmp_path / "cut", resume=True)

    assert resumed.lr == whole.lr
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)
    assert all(torch.equal(a[name], b[name]) for name in a)
    drop = "seconds"
    assert [{k: v for k, v in r.items() if k != drop} for r in resumed.history] == [
        {k: v for k, v in r.items() if k != drop} for r in whole.history
    ]


def test_resume_refuses_to_change_the_recipe(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(TrainConfig(epochs=1, lr=1e-3, **QUICK), out)
    with pytest.raises(InputError, match="already holds a run"):
        train(TrainConfig(epochs=1, lr=1e-3, **QUICK), out)
    with pytest.raises(InputError, match=r"lr 0\.001 -> 0\.1"):
        train(TrainConfig(epochs=1, lr=0.1, **QUICK), out, resume=True)
    again = train(TrainConfig(epochs=1, lr=1e-3, preflight=False, monitor=True), out, resume=True)
    assert len(again.history) == 1  # nothing left to train; monitor is a runtime setting and may change
    with pytest.raises(InputError, match="no checkpoint"):
        train(None, tmp_path / "never", resume=True)


def test_a_broken_setup_is_stopped_before_it_trains(tmp_path: Path) -> None:
    """Plain SGD at lr=50 on standardized digits diverges: the pre-flight diagnosis stops the run with its report."""
    out = tmp_path / "run"
    result = train(TrainConfig(optimizer="sgd", lr=50.0, epochs=2, schedule="none", preflight_budget_s=20), out)
    assert result.stopped == "preflight"
    assert result.preflight is not None and not result.preflight.healthy
    assert "lr.too_high" in result.preflight.causes
    assert result.history == []
    assert (out / "preflight.html").is_file() and (out / "preflight.json").is_file()
    assert not (out / "checkpoint.pt").exists()
    assert json.loads((out / "findings.json").read_text())["preflight"]["healthy"] is False


def test_a_sane_setup_passes_the_preflight_and_trains(tmp_path: Path) -> None:
    result = train(TrainConfig(epochs=1, monitor=False, preflight_budget_s=20), tmp_path / "run")
    assert result.stopped is None
    assert result.preflight is not None and result.preflight.healthy, result.preflight.causes
    assert len(result.history) == 1


def test_cifar10_files_train_end_to_end(tmp_path: Path) -> None:
    write_cifar(tmp_path / "data")
    with pytest.warns(TorchMedicWarning):
        result = train(TrainConfig(data=f"cifar10:{tmp_path / 'data'}", epochs=1, lr=1e-3, **QUICK), tmp_path / "run")
    assert len(result.history) == 1
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["resolved"]["train_images"] == 40 and record["resolved"]["image_size"] == 32


def test_bad_settings_are_refused_with_the_choices() -> None:
    with pytest.raises(InputError, match="adamw, adam, sgd"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(InputError, match="positive learning rate"):
        TrainConfig(lr=0.0)
