"""`python -m torchmedic.demo`: a tour on real handwritten digits (scikit-learn's, shipped offline).

One healthy CNN, five classic bugs diagnosed with evidence and a verified fix, one of them repaired (with
before/after metrics and the lines to change), the forum's SimpleCNN fed the wrong image size, and the live
monitor catching a missing zero_grad in a plain training loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.rule import Rule
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchmedic.doctor import diagnose
from torchmedic.errors import TorchMedicError
from torchmedic.monitor import Monitor
from torchmedic.render.repair_text import render as render_repair
from torchmedic.render.text import render
from torchmedic.repair import repair


def digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """1797 8x8 digits scaled to [0, 1], as (N, 1, 8, 8), and their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - the demo extra installs it
        raise TorchMedicError("the demo uses scikit-learn's digits: pip install torchmedic[demo]") from exc
    digits = load_digits()
    return torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1), torch.tensor(digits.target)


class DigitCNN(nn.Module):
    """A small CNN for 8x8 digits; `head` can end in an extra module to plant a bug."""

    def __init__(self, *tail: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 2 * 2, 10), *tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SimpleCNN(nn.Module):
    """The forum answer's model: its Linear is sized for 28x28 inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(16 * 14 * 14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(F.relu(self.conv1(x))), 1))


@dataclass
class Scene:
    title: str
    build: Callable[[torch.Tensor, torch.Tensor], tuple[nn.Module, Any, Any, torch.optim.Optimizer]]


def _loader(x: torch.Tensor, y: torch.Tensor, shuffle: bool = True) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=shuffle, generator=torch.Generator().manual_seed(0))


def _standard(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / x.std()


def _healthy(x: torch.Tensor, y: torch.Tensor) -> tuple:
    model = DigitCNN()
    return model, _loader(_standard(x), y), nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)


def _double_softmax(x: torch.Tensor, y: torch.Tensor) -> tuple:
    model = DigitCNN(nn.Softmax(dim=1))
    return model, _loader(_standard(x), y), nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)


def _lr_too_high(x: torch.Tensor, y: torch.Tensor) -> tuple:
    model = DigitCNN()
    return model, _loader(_standard(x), y), nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=0.5)


def _raw_pixels(x: torch.Tensor, y: torch.Tensor) -> tuple:
    model = DigitCNN()
    return model, _loader(x * 255, y), nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)


def _sorted_labels(x: torch.Tensor, y: torch.Tensor) -> tuple:
    order = y.argsort(stable=True)
    model = DigitCNN()
    loader = _loader(_standard(x)[order], y[order], shuffle=False)
    return model, loader, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)


def _tiny_init(x: torch.Tensor, y: torch.Tensor) -> tuple:
    model = DigitCNN()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, std=1e-3)
    return model, _loader(_standard(x), y), nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)


SCENES = (
    Scene("A healthy CNN: Adam(lr=1e-3), standardized digits", _healthy),
    Scene("Softmax at the end of forward, then CrossEntropyLoss", _double_softmax),
    Scene("Adam with lr=0.5", _lr_too_high),
    Scene("Raw 0-255 pixels, no Normalize", _raw_pixels),
    Scene("A dataset sorted by label, loaded with shuffle=False", _sorted_labels),
    Scene("Weights drawn from normal(0, 0.001)", _tiny_init),
)


def _repair(console: Console, x: torch.Tensor, y: torch.Tensor) -> None:
    console.print(Rule("repair(): raw 0-255 pixels, fixed on copies and proven by a pilot run"))
    torch.manual_seed(0)
    model, loader, loss_fn, optimizer = _raw_pixels(x, y)
    render_repair(repair(model, loader, loss_fn, optimizer), console)


def _wrong_size(console: Console) -> None:
    console.print(Rule("The forum's SimpleCNN (sized for 28x28) fed 32x32 RGB images"))
    images = torch.rand(64, 3, 32, 32)
    loader = _loader(images, torch.randint(0, 10, (64,)))
    try:
        diagnose(SimpleCNN(), loader, nn.CrossEntropyLoss())
    except TorchMedicError as exc:
        console.print(f"[bold red]{type(exc).__name__}[/bold red]: {exc}")


def _live(console: Console, x: torch.Tensor, y: torch.Tensor) -> None:
    console.print(Rule("Live: a training loop that forgot optimizer.zero_grad()"))
    torch.manual_seed(0)
    model = DigitCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = _loader(_standard(x), y)

    def announce(finding: Any) -> None:
        console.print(f"[bold yellow]step {finding.step}[/bold yellow]: {finding.cause}: {finding.summary}")

    with Monitor(model, optimizer, on_finding=announce) as monitor:
        for step, (xb, yb) in enumerate(loader):
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()  # gradients pile up: zero_grad() is missing
            optimizer.step()
            monitor.log(loss=loss)
            if step == 25:
                break
    if not monitor.findings:
        console.print("the monitor saw nothing wrong")


def main() -> None:
    console = Console()
    x, y = digit_images()
    console.print(Rule("[bold]torchmedic demo[/bold]: why does my model always give the same output?"))
    for scene in SCENES:
        console.print(Rule(scene.title))
        torch.manual_seed(0)
        model, loader, loss_fn, optimizer = scene.build(x, y)
        started = time.perf_counter()
        report = diagnose(model, loader, loss_fn, optimizer)
        render(report, console, limit=1)
        console.print(
            f"[dim]diagnosed in {time.perf_counter() - started:.1f} s on copies; your objects are untouched[/dim]"
        )
    _repair(console, x, y)
    _wrong_size(console)
    _live(console, x, y)


if __name__ == "__main__":
    main()
