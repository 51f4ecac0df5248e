"""Monitoring changes nothing in training: a script with BatchNorm, dropout, random augmentation in loader
workers, a scheduler and an evaluation pass ends bit-identical (weights, buffers, optimizer state, RNG) run
plainly, under `Monitor` (default sampling, every step, optimizer found by itself) and under `torchmedic run`."""

from __future__ import annotations

import runpy
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from torchmedic.cli import main

SCRIPT = '''
import sys
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Digits(Dataset):
    """Digit images with a random flip and noise drawn in the loader's worker processes."""

    def __init__(self):
        d = load_digits()
        self.x = torch.tensor(d.images[:640] / 16.0, dtype=torch.float32).unsqueeze(1)
        self.y = torch.tensor(d.target[:640])

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i].flip(-1) if torch.rand(()) < 0.5 else self.x[i]
        return x + 0.05 * torch.randn_like(x), self.y[i]


def main(path, monitoring):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.Dropout(0.2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 10),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 15, 0.5)
    loader = DataLoader(Digits(), batch_size=32, shuffle=True, num_workers=2)
    loss_fn = nn.CrossEntropyLoss()
    monitor = None
    if monitoring != "none":
        import torchmedic

        watched = None if monitoring == "auto" else optimizer
        monitor = torchmedic.Monitor(model, watched, every=None if monitoring == "default" else 1)
        monitor.start()
    for epoch in range(2):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if monitor is not None:
                monitor.log(loss=loss, outputs=out, targets=y)
        model.eval()
        with torch.no_grad():
            for x, _ in loader:
                model(x)
    if monitor is not None:
        monitor.close()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}
    torch.save(state, path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("unchanged") / "train.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_plain(script: Path, out: Path, monitoring: str) -> None:
    argv = sys.argv
    sys.argv = [str(script), str(out), monitoring]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv


def final_state(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def plain(script: Path) -> dict[str, Any]:
    out = script.parent / "plain.pt"
    threads = torch.get_num_threads()
    run_plain(script, out, "none")
    torch.set_num_threads(threads)
    return final_state(out)


def assert_identical(a: dict[str, Any], b: dict[str, Any]) -> None:
    model_a, model_b = a["model"], b["model"]
    assert list(model_a) == list(model_b)
    changed = [k for k in model_a if not torch.equal(model_a[k], model_b[k])]
    assert not changed, f"weights or buffers differ: {changed}"
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
    for index, values in state_a.items():
        for key, value in values.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b[index][key])), (index, key)
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert torch.equal(a["rng"], b["rng"])


@pytest.mark.parametrize("monitoring", ["default", "every1", "auto"])
def test_monitor_leaves_training_bit_identical(script: Path, plain: dict[str, Any], monitoring: str) -> None:
    out = script.parent / f"{monitoring}.pt"
    run_plain(script, out, monitoring)
    assert_identical(plain, final_state(out))


@pytest.mark.parametrize("every", [None, 1])
def test_torchmedic_run_leaves_training_bit_identical(script: Path, plain: dict[str, Any], every: int | None) -> None:
    out = script.parent / f"run_{every}.pt"
    flags = [] if every is None else ["--every", str(every)]
    assert main(["run", *flags, str(script), str(out), "none"]) in (0, 1)
    assert_identical(plain, final_state(out))
