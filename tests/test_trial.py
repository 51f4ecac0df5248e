"""The trial everything is built on: its length, its extension for slow starters, and the rate it reports."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchmedic.batch import Batch
from torchmedic.clone import OptimizerSpec
from torchmedic.setup import Setup
from torchmedic.task import Task
from torchmedic.trial import run_trial
from torchmedic.verdict import falling_rate

from setups import digits

TASK = Task("multiclass", "cross_entropy", 10, "test")


def setup() -> Setup:
    torch.manual_seed(0)
    x, y = digits()
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    spec = OptimizerSpec.of(torch.optim.SGD(model.parameters(), lr=0.01), model)
    train = tuple(Batch(x[i : i + 64], y[i : i + 64]) for i in range(0, 192, 64))
    return Setup(model, spec, nn.CrossEntropyLoss(), [], train, Batch(x[1000:1256], y[1000:1256]))


@pytest.mark.parametrize(("extend", "steps"), [(True, 25), (False, 10)])
def test_a_trial_is_extended_only_when_asked(extend: bool, steps: int) -> None:
    seen = []

    def ask(metrics: object, training: object) -> bool:
        seen.append((metrics, training))
        return extend

    result = run_trial(setup(), 10, TASK, extend_to=25, extend_if=ask)
    assert result.steps == steps and len(result.losses) == steps
    assert len(seen) == 1  # asked once, at the checkpoint


def test_falling_rate_is_the_slope_of_the_second_half() -> None:
    spike_then_linear = [9.0, 7.0, 5.0] + [3.0 - 0.01 * i for i in range(9)]
    assert falling_rate(spike_then_linear) == pytest.approx(0.01)
    assert falling_rate([2.3] * 10) == pytest.approx(0.0)
