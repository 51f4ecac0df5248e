"""The monitor under DistributedDataParallel, two CPU processes (gloo) launched with torchrun: statistics are
reduced across ranks, findings and logs come from rank 0 only, and stop_on stops every rank at the same step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ddp]
WORKER = Path(__file__).with_name("ddp_worker.py")


def launch(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(tmp_path),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_reduced_statistics_and_rank_zero_decisions(tmp_path: Path) -> None:
    rank0, rank1 = launch(tmp_path, "no_zero_grad", "20", "run")
    # the last step (20) is sampled: its statistics are the two ranks' batches together
    s = rank0["signals"]
    assert s["monitor.step"] == 20 and rank0["last"]["step"] == rank1["last"]["step"] == 20
    assert s["target.hist"] == [
        a + b for a, b in zip(rank0["last"]["target_hist"], rank1["last"]["target_hist"], strict=True)
    ]
    assert s["loss"] == pytest.approx((rank0["last"]["loss"] + rank1["last"]["loss"]) / 2, rel=1e-5)
    assert s["input.mean"] == pytest.approx((rank0["last"]["input_mean"] + rank1["last"]["input_mean"]) / 2, rel=1e-5)
    assert rank1["signals"]["target.hist"] == s["target.hist"]  # every rank holds the reduced numbers
    assert rank0["signals"]["eval_input.captures"] >= 1 and rank1["signals"]["eval_input.captures"] == 0  # local
    assert [f["cause"] for f in rank0["findings"]] == ["optim.missing_zero_grad"]
    assert rank1["findings"] == []  # decisions on rank 0 only
    assert [p.name for p in (tmp_path / "logs").iterdir() if p.name.endswith(".jsonl")] == ["torchmedic-events.jsonl"]
    events = [json.loads(line) for line in (tmp_path / "logs" / "torchmedic-events.jsonl").read_text().splitlines()]
    assert sum(e["type"] == "start" for e in events) == 1  # one writer


def test_stop_on_stops_every_rank_at_the_same_step(tmp_path: Path) -> None:
    rank0, rank1 = launch(tmp_path, "no_zero_grad", "200", "stop")
    assert rank0["steps"] == rank1["steps"] < 200  # no rank left waiting in a collective
    assert rank0["findings"][0]["cause"] == "optim.missing_zero_grad"
