"""Faults injected anywhere in a diagnosis or a repair (in a probe, an intervention, a pilot) leave the user's
objects exactly as they were; a training process killed by SIGKILL leaves a monitor log whole up to its last event."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from test_diagnose_state import Fails, assert_same, snapshot, trained
from torch import nn

import torchmedic

from setups import Setup, healthy_cnn, sick

SPOTS = (0.02, 0.2, 0.4, 0.6, 0.8, 0.97)  # where the fault lands, as a share of the loss calls of a whole run
ERRORS = (KeyboardInterrupt, RuntimeError)


class Counts:
    """Cross-entropy that counts its calls: how many a whole run makes, so that faults can land across it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return nn.functional.cross_entropy(outputs, targets)


def loss_calls(make: Callable[[], Setup], entry: Callable[..., Any]) -> int:
    setup = trained(make())
    counter = Counts()
    entry(setup.model, setup.loader, counter, setup.optimizer)
    return counter.calls


ENTRIES: dict[str, tuple[Callable[[], Setup], Callable[..., Any]]] = {
    "diagnose a healthy CNN": (healthy_cnn, torchmedic.diagnose),
    "diagnose a too-high LR": (lambda: sick("lr.too_high"), torchmedic.diagnose),
    "repair dead units": (lambda: sick("init.dead_units"), torchmedic.repair),
    "find_lr": (healthy_cnn, torchmedic.find_lr),
}


@pytest.mark.slow
@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("error", ERRORS)
def test_a_fault_anywhere_restores_everything(entry: str, error: type[BaseException]) -> None:
    make, call = ENTRIES[entry]
    total = loss_calls(make, call)
    for spot in SPOTS:
        torch.manual_seed(0)
        setup = trained(make())
        before = snapshot(setup.model, setup.optimizer)
        after = max(1, int(spot * total))
        try:
            call(setup.model, setup.loader, Fails(error("injected"), after=after), setup.optimizer)
        except error:
            pass  # raised to the caller, or (a RuntimeError in one trial) recorded and the run went on
        except torchmedic.TorchMedicError as exc:
            assert "injected" in str(exc), exc
        assert_same(before, snapshot(setup.model, setup.optimizer))


class Bomb(nn.Module):
    """A model whose forward raises on one given call, counted on the class so that copies share the count."""

    calls = 0
    fuse = 0

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        if type(self).calls == type(self).fuse:
            raise KeyboardInterrupt
        return self.net(x)


@pytest.mark.slow
def test_an_interrupt_in_any_forward_restores_everything() -> None:
    digits_setup = sick("lr.too_high")
    x, y = digits_setup.loader.dataset.tensors
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
    model = Bomb()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    Bomb.calls, Bomb.fuse = 0, -1
    torchmedic.diagnose(model, loader, nn.CrossEntropyLoss(), optimizer)
    total = Bomb.calls
    for spot in SPOTS:
        before = snapshot(model, optimizer)
        Bomb.calls, Bomb.fuse = 0, max(1, int(spot * total))
        with pytest.raises(KeyboardInterrupt):
            torchmedic.diagnose(model, loader, nn.CrossEntropyLoss(), optimizer)
        assert_same(before, snapshot(model, optimizer))


TRAINING = """
import sys
import torch
from torch import nn
torch.manual_seed(0)
x = torch.randn(512, 20)
y = (x[:, :4].sum(1) > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
progress = open(sys.argv[1], "w")
for step in range(10**9):
    idx = torch.randint(0, 512, (32,))
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
    optimizer.step()
    progress.write(f"{step + 1}\\n")
    progress.flush()
"""


def completed_steps(progress: Path) -> int:
    lines = progress.read_text().splitlines() if progress.exists() else []
    return int(lines[-1]) if lines else 0


def test_the_event_log_survives_sigkill(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAINING)
    progress = tmp_path / "progress.txt"
    command = [
        sys.executable,
        "-m",
        "torchmedic",
        "run",
        "--every",
        "1",
        "--log-dir",
        "logs",
        "train.py",
        str(progress),
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while completed_steps(progress) < 200 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    reached = completed_steps(progress)
    text = (tmp_path / "logs" / "torchmedic-events.jsonl").read_text()
    assert text.endswith("\n")  # no line cut in the middle
    events = [json.loads(line) for line in text.splitlines()]
    assert events[0]["type"] == "start" and all(e["type"] != "end" for e in events)
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert steps == list(range(steps[0], steps[-1] + 1))  # every=1: no sampled step missing
    assert steps[-1] >= reached - 2  # each step is written once the next one starts: nothing buffered is lost
