"""`torchmedic run script.py`: an unmodified script, monitored end to end, with the exit codes of `diagnose`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_globals
from torch.optim import optimizer as optimizer_globals

from torchmedic.cli import main

SCRIPT = """
import sys
import torch
from torch import nn

torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(256, 20)
y = (x[:, :4].sum(1) > 0).long() + 2 * (x[:, 4] > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
{load}
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
loss_fn = nn.CrossEntropyLoss()
for step in range(int(sys.argv[1]) if len(sys.argv) > 1 else 60):
    idx = torch.randint(0, 256, (32,))
    {zero_grad}
    loss = loss_fn(model(x[idx]), y[idx])
    loss.backward()
    optimizer.step()
print("trained", __name__, sys.argv[1:])
{tail}
"""


def script(tmp_path: Path, *, zero_grad: bool = True, load: str = "", tail: str = "") -> Path:
    path = tmp_path / "train.py"
    code = SCRIPT.format(zero_grad="optimizer.zero_grad()" if zero_grad else "pass", load=load, tail=tail)
    path.write_text(textwrap.dedent(code))
    return path


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def globals_now() -> tuple[object, ...]:
    """What `torchmedic run` patches or hooks globally."""
    return (
        F.cross_entropy,
        F.mse_loss,
        nn.Module.load_state_dict,
        len(optimizer_globals._global_optimizer_pre_hooks),
        len(optimizer_globals._global_optimizer_post_hooks),
        len(module_globals._global_forward_pre_hooks),
        len(module_globals._global_forward_hooks),
    )


def test_sick_script_is_named_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = globals_now()
    report, logs = tmp_path / "report.json", tmp_path / "logs"
    code = main(["run", "--json", str(report), "--log-dir", str(logs), str(script(tmp_path, zero_grad=False)), "80"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "trained __main__ ['80']" in out  # the script ran as __main__ with its own arguments
    assert "optim.missing_zero_grad" in err and "fix: Call optimizer.zero_grad()" in err
    data = json.loads(report.read_text())
    assert data["steps"] == 80 and not data["healthy"]
    assert [f["cause"] for f in data["findings"]] == ["optim.missing_zero_grad"]
    assert data["signals"][0]["loss.kind"] == "cross_entropy"
    events = [json.loads(line) for line in (logs / "torchmedic-events.jsonl").read_text().splitlines()]
    assert {"start", "step", "finding", "end"} <= {e["type"] for e in events}
    assert globals_now() == before


def test_healthy_script_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = globals_now()
    assert main(["run", str(script(tmp_path))]) == 0
    err = capsys.readouterr().err
    assert "60 optimizer steps" in err and "no findings" in err
    assert globals_now() == before


def test_load_that_matched_nothing_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load = (
        "state = {'module.' + k: v for k, v in model.state_dict().items()}\nmodel.load_state_dict(state, strict=False)"
    )
    assert main(["run", str(script(tmp_path, load=load))]) == 1
    err = capsys.readouterr().err
    assert "init.pretrained_not_loaded" in err and "prefix 'module.'" in err


def test_stop_on_ends_the_script_early(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = script(tmp_path, zero_grad=False)
    assert main(["run", "--stop-on", "optim.missing_zero_grad", "--every", "2", str(path), "500"]) == 1
    out, err = capsys.readouterr()
    assert "trained" not in out and "stopped early" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "missing.py"], "no such script"),
        (["run", "--every", "0", "SCRIPT"], "--every must be >= 1"),
        (["run", "--stop-on", "lr.too_hot", "SCRIPT"], "unknown cause codes"),
        (["run"], ""),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    path = str(script(tmp_path))
    assert main([path if a == "SCRIPT" else a for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_crashing_script_without_findings_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = globals_now()
    path = script(tmp_path, tail="raise RuntimeError('disk full')")
    assert main(["run", str(path)]) == 2
    assert "RuntimeError: disk full" in capsys.readouterr().err
    assert globals_now() == before


@pytest.mark.slow
def test_command_line_process(tmp_path: Path) -> None:
    path = script(tmp_path, zero_grad=False)
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from torchmedic.cli import main; sys.exit(main())", "run", str(path), "40"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "trained __main__ ['40']" in done.stdout and "optim.missing_zero_grad" in done.stderr


def test_optimizer_built_after_discovery_gets_its_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second training phase (fine-tuning after pre-training) is watched too: its head, replaced after its
    optimizer was built, is found never to train."""
    path = tmp_path / "finetune.py"
    path.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        torch.manual_seed(0)
        x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
        model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))

        def train(optimizer, steps):
            for _ in range(steps):
                idx = torch.randint(0, 256, (32,))
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                optimizer.step()

        train(torch.optim.Adam(model.parameters(), lr=1e-3), 30)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        model[2] = nn.Linear(16, 3)  # a new head, after the optimizer
        train(optimizer, 30)
    """)
    )
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "optim.not_updating" in err and "2.weight" in err


NO_STEP = """
import torch
import torch.nn.functional as F
from torch import nn


def main():
    torch.manual_seed(0)
    x = torch.randn(256, 20)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(120):
        idx = torch.randint(0, 256, (32,))
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        {step}


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("steps", [False, True])
def test_a_loop_that_never_steps_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], steps: bool) -> None:
    before = globals_now()
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(NO_STEP.format(step="optimizer.step()" if steps else "pass")))
    code = main(["run", str(path)])
    err = capsys.readouterr().err
    assert globals_now() == before
    if steps:
        assert code == 0 and "120 optimizer steps" in err
        return
    assert code == 1 and "made no optimizer step" in err
    assert "optim.not_updating" in err and "no optimizer step yet" in err and "step() is never called" in err
    forwards = int(err.split(" training forwards with backward")[0].rsplit(None, 1)[-1])
    assert forwards <= 100


AMP = """
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
scaler = torch.amp.GradScaler("cpu")
x, y = torch.randn(256, 20) * {scale}, torch.randint(0, 3, (256,))
for i in range(120):
    optimizer.zero_grad()
    with torch.autocast("cpu", dtype=torch.float16):
        loss = F.cross_entropy(model(x[i % 4 * 64 :][:64]), y[i % 4 * 64 :][:64])
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
"""


@pytest.mark.parametrize("overflows", [False, True])
def test_a_grad_scaler_that_skips_every_step_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overflows: bool
) -> None:
    """fp16 autocast with a GradScaler: a few skipped steps are calibration, a scaler that never steps is not."""
    before, original = globals_now(), torch.amp.GradScaler.step
    path = tmp_path / "train.py"
    path.write_text(AMP.format(scale=3000 if overflows else 1))  # raw inputs of ~3000 overflow float16 in forward
    code = main(["run", str(path)])
    err = " ".join(capsys.readouterr().err.split())
    assert globals_now() == before and torch.amp.GradScaler.step is original
    if not overflows:
        assert code == 0 and "120 optimizer steps" in err and "no findings" in err
        return
    assert code == 1 and "optim.not_updating" in err and "the GradScaler skipped" in err
    skipped = int(err.split("the GradScaler skipped ")[1].split()[0])
    assert 32 <= skipped <= 100
