"""Models too large for the budget: does diagnose() return within budget_s + 10%, and say what it could not run?

Each row is one diagnose() of a model whose one training step costs a large share of the budget (wide MLPs and
torchvision ResNets on random data, 2 CPU threads), with the seconds it took against its budget.

    python bench/budget_bench.py
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

import torchmedic
from torchmedic.errors import TorchMedicWarning

OVERRUN = 1.10  # the allowance: budget_s plus 10%


def mlp(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(2048, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


def resnet(depth: int) -> nn.Module:
    from torchvision import models

    return models.resnet18(num_classes=10) if depth == 18 else models.resnet50(num_classes=10)


CASES: list[tuple[str, Callable[[], nn.Module], tuple[int, ...], float]] = [
    ("MLP 25M params, Adam", lambda: mlp(4096), (2048,), 2.0),
    ("MLP 25M params, Adam", lambda: mlp(4096), (2048,), 5.0),
    ("MLP 84M params, Adam", lambda: mlp(8192), (2048,), 5.0),
    ("MLP 84M params, Adam", lambda: mlp(8192), (2048,), 10.0),
    ("ResNet-18 160x160, SGD", lambda: resnet(18), (3, 160, 160), 5.0),
    ("ResNet-18 160x160, SGD", lambda: resnet(18), (3, 160, 160), 10.0),
    ("ResNet-50 160x160, SGD", lambda: resnet(50), (3, 160, 160), 5.0),
    ("ResNet-50 160x160, SGD", lambda: resnet(50), (3, 160, 160), 10.0),
]


def main() -> None:
    torch.set_num_threads(2)
    warnings.simplefilter("ignore", TorchMedicWarning)
    overruns = 0
    print(f"{'model':<24} {'budget s':>8} {'took s':>7} {'ratio':>6}  symptom / first thing skipped")
    for name, make, shape, budget in CASES:
        torch.manual_seed(0)
        model = make()
        x, y = torch.randn(256, *shape), torch.randint(0, 10, (256,))
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
        optimizer = (torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if "SGD" in name
                     else torch.optim.Adam(model.parameters()))  # fmt: skip
        started = time.perf_counter()
        report = torchmedic.diagnose(model, loader, nn.CrossEntropyLoss(), optimizer, budget_s=budget)
        took = time.perf_counter() - started
        overruns += took > budget * OVERRUN
        symptom = report.symptom.kind if report.symptom is not None else "not measured"
        skipped = report.skipped[0] if report.skipped else ""
        print(f"{name:<24} {budget:>8.0f} {took:>7.2f} {took / budget:>6.2f}  {symptom} / {skipped}", flush=True)
    print(f"overruns (> budget + 10%): {overruns} of {len(CASES)}")


if __name__ == "__main__":
    main()
