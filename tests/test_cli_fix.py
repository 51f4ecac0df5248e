"""`torchmedic fix FILE.py`: exit codes, JSON, saved weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_cli_diagnose import BROKEN_SETUP_FUNCTION, HEADER, write
from torch import nn

from torchmedic.cli import main

NAN_FEATURES = (
    HEADER
    + """
x[::40, 5] = float("nan")
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
"""
)


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """One torch thread: on a shared 2-core machine, two threads per process spin-wait and run ~20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_repaired_file_exits_0_with_json_and_weights(tmp_path: Path) -> None:
    out, weights = tmp_path / "fix.json", tmp_path / "fixed.pt"
    code = main(["fix", write(tmp_path, BROKEN_SETUP_FUNCTION), "--budget", "20", "--json", str(out), "--save",
                 str(weights)])  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text())
    assert data["repaired"] and data["verified"] and not data["unresolved"]
    assert data["changes"][0]["causes"] == ["loss.double_softmax"]
    assert "model[3] = nn.Identity()" in data["script"]
    assert data["before"]["learned"] is False and data["after"]["learned"] is True
    assert data["diagnosis"]["findings"][0]["cause"] == "loss.double_softmax"
    fixed = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Identity())  # after the change
    fixed.load_state_dict(torch.load(weights))


def test_unresolved_causes_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fix", write(tmp_path, NAN_FEATURES), "--budget", "20", "--json", "-"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [u["cause"] for u in data["unresolved"]] == ["data.nonfinite"] and not data["repaired"]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fix"]) == 2
    assert main(["fix", str(tmp_path / "missing.py")]) == 2
    assert main(["fix", write(tmp_path, BROKEN_SETUP_FUNCTION), "--budget", "0"]) == 2
    assert "--budget 0" in capsys.readouterr().err
