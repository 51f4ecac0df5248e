"""torchmedic opens no network connection (proved with the network cut in the processes it runs), says in --help
that it executes the user's file, and reads checkpoints with weights_only=True."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_cli_diagnose import BROKEN_SETUP_FUNCTION, HEALTHY

from torchmedic.cli import build_parser
from torchmedic.errors import InputError
from torchmedic.recipe import checkpoint

NO_NETWORK = """
import os
import socket

_log = os.environ["TORCHMEDIC_TEST_CONNECTIONS"]
_NET = (socket.AF_INET, socket.AF_INET6)


def _refuse(what):
    with open(_log, "a") as f:
        f.write(what + "\\n")
    raise OSError("network blocked by the test: " + what)


def _connect(self, address, _real=socket.socket.connect):
    if self.family in _NET:
        _refuse(f"connect {address}")
    return _real(self, address)


def _connect_ex(self, address, _real=socket.socket.connect_ex):
    if self.family in _NET:
        _refuse(f"connect_ex {address}")
    return _real(self, address)


def _sendto(self, *args, _real=socket.socket.sendto):
    if self.family in _NET:
        _refuse(f"sendto {args[-1]}")
    return _real(self, *args)


def _getaddrinfo(host, *args, **kwargs):
    _refuse(f"getaddrinfo {host}")


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.socket.sendto = _sendto
socket.getaddrinfo = _getaddrinfo
"""

SCRIPT = """
import torch
from torch import nn
torch.manual_seed(0)
x = torch.randn(256, 20)
y = (x[:, :4].sum(1) > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(40):
    idx = torch.randint(0, 256, (32,))
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
    optimizer.step()
"""


def offline(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with AF_INET/AF_INET6 connections and name lookups refused in it and every child it starts
    (a sitecustomize on PYTHONPATH); each attempt is logged, so one that is caught and swallowed still counts."""
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(NO_NETWORK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), *sys.path]),
               TORCHMEDIC_TEST_CONNECTIONS=str(tmp_path / "connections.log"))  # fmt: skip
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)


def attempts(tmp_path: Path) -> list[str]:
    log = tmp_path / "connections.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_block_refuses_a_connection_and_logs_it(tmp_path: Path) -> None:
    result = offline(tmp_path, "-c", "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)")
    assert result.returncode != 0 and "network blocked by the test" in result.stderr
    assert attempts(tmp_path)


@pytest.mark.slow
def test_no_command_opens_a_network_connection(tmp_path: Path) -> None:
    (tmp_path / "healthy.py").write_text(HEALTHY)
    (tmp_path / "broken.py").write_text(BROKEN_SETUP_FUNCTION)
    (tmp_path / "script.py").write_text(SCRIPT)
    commands = [
        ["diagnose", "healthy.py", "--json", "diagnosis.json", "--budget", "10"],
        ["report", "diagnosis.json"],
        ["fix", "broken.py", "--budget", "20"],
        ["run", "--log-dir", "logs", "script.py"],
        ["report", "logs"],
        ["train", "--epochs", "1", "--out", "run", "--quiet"],
    ]
    for command in commands:
        result = offline(tmp_path, "-m", "torchmedic", *command)
        assert result.returncode in (0, 1), (command, result.stderr)
    assert attempts(tmp_path) == []
    assert json.loads((tmp_path / "diagnosis.json").read_text())["healthy"] is True
    assert (tmp_path / "diagnosis.html").exists() and list((tmp_path / "logs").iterdir())
    assert (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("command", ["diagnose", "fix", "run"])
def test_help_says_the_file_is_executed(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    assert "executed as Python code with your permissions" in " ".join(capsys.readouterr().out.split())


class Payload:
    """An object whose unpickling would run code: weights_only=True must refuse to build it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled: code ran",))


def test_a_checkpoint_holding_code_is_refused_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "payload": Payload()}, path)
    with pytest.raises(InputError):
        checkpoint.load(path)
    assert "code ran" not in capsys.readouterr().out
