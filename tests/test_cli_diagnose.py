"""`torchmedic diagnose FILE.py`: exit codes, JSON, the ways a file can define its setup."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from torchmedic.cli import main

HEADER = """
import torch
from torch import nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset
x, y = load_digits(return_X_y=True)
x = torch.tensor(x, dtype=torch.float32)
x = (x - x.mean(0)) / (x.std(0) + 1e-6)
y = torch.tensor(y)
torch.manual_seed(0)
"""

HEALTHY = (
    HEADER
    + """
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
if __name__ == "__main__":
    raise SystemExit("the training block must not run")
"""
)

BROKEN_SETUP_FUNCTION = (
    HEADER
    + """
def setup():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    return model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.05)
"""
)

TOO_LOW_LR = (
    HEADER
    + """
model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-5)
"""
)  # a few seconds of range test and trials: long enough for the progress bar


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "train.py"
    path.write_text(text)
    return str(path)


def test_healthy_file_exits_0_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert main(["diagnose", write(tmp_path, HEALTHY), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["healthy"] is True and data["findings"] == []


def test_findings_exit_1_with_a_setup_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnose", write(tmp_path, BROKEN_SETUP_FUNCTION), "--json", "-"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["findings"][0]["cause"] == "loss.double_softmax"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "model = 1\n", "defines no loader, loss_fn"),
        ("raise ValueError('boom')\n", "raised before its first optimizer step: ValueError: boom"),
    ],
)
def test_bad_files_exit_2(tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnose", write(tmp_path, text)]) == 2
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["diagnose"]) == 2
    assert main(["diagnose", str(tmp_path / "missing.py")]) == 2


def test_the_installed_command_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "torchmedic", "diagnose", write(tmp_path, HEALTHY)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Healthy" in result.stdout


def _on_a_terminal(args: list[str]) -> str:
    """Run `python -m torchmedic ARGS` with stderr on a pseudo-terminal, outside CI; everything it drew there."""
    import os
    import pty

    main_fd, child_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    process = subprocess.Popen([sys.executable, "-m", "torchmedic", *args], stdout=subprocess.DEVNULL,
                               stderr=child_fd, env=env)  # fmt: skip
    os.close(child_fd)
    drawn = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    process.wait(timeout=300)
    os.close(main_fd)
    return drawn.decode(errors="replace")


def test_a_progress_bar_names_the_steps_on_a_terminal_and_quiet_hides_it(tmp_path: Path) -> None:
    """A diagnosis that takes more than a second shows the step under way (a probe, a trial of a fix) against the
    budget on a terminal; --quiet, like CI or a redirected stderr, draws nothing."""
    path = write(tmp_path, TOO_LOW_LR)
    drawn = _on_a_terminal(["diagnose", path, "--budget", "20"])
    assert "diagnosing" in drawn and "trial:" in drawn and "of 20 s at most" in drawn, drawn[-2000:]
    assert "diagnosing" not in _on_a_terminal(["diagnose", path, "--budget", "20", "--quiet"])
