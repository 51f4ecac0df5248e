"""`torchmedic train`: exit codes, the run directory, --resume and the errors it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_recipe_data import write_cifar

from torchmedic.cli import main

pytest.importorskip("torchvision")
QUICK = ["--no-preflight", "--no-monitor", "--quiet"]


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """One torch thread: on a shared 2-core machine, two threads per process spin-wait and run ~20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_then_resume_to_more_epochs_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--epochs", "1", "--lr", "0.003", "--out", str(out), *QUICK]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["lr"] == 0.003 and record["config"]["epochs"] == 1
    assert "test accuracy" in capsys.readouterr().err

    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 2
    assert "epochs 1 -> 2" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--epochs", "1", *QUICK]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_keeps_the_first_runs_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--optimizer", "sgd", "--out", str(out), *QUICK]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--no-monitor"]) == 0
    assert "sgd" in capsys.readouterr().err


def test_a_broken_setup_exits_1_without_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["train", "--optimizer", "sgd", "--lr", "50", "--schedule", "none", "--out", str(out), "--quiet"])
    assert code == 1
    assert "--no-preflight" in capsys.readouterr().err
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "vgg"], "invalid choice"),
        (["--lr", "fast"], "neither a number nor 'auto'"),
        (["--data", "folder:/no/such/folder"], "no such folder"),
        (["--data", "mnist"], "folder:PATH"),
        (["--epochs", "0"], "positive"),
    ],
)
def test_bad_arguments_exit_2_naming_the_fix(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *args, "--out", str(tmp_path / "run"), *QUICK]) == 2
    assert message in capsys.readouterr().err


def test_cifar_format_files_train_with_a_one_line_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cifar(tmp_path / "data")
    args = ["train", "--data", f"cifar10:{tmp_path / 'data'}", "--epochs", "1", "--lr", "1e-3", "--out"]
    assert main([*args, str(tmp_path / "run"), *QUICK]) == 0
    err = capsys.readouterr().err
    assert "torchmedic: warning:" in err and "published checksums" in err
    assert "datasets.py" not in err  # the user is not shown the library's source line
