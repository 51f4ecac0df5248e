"""How much the training monitor slows a training step, measured side by side in one process on CPU.

Two identical copies of a model train on the same batches; steps alternate between the plain copy and the
monitored one (A B A B ...), each timed on its own, so that load on the machine hits both alike. Printed per
model and monitor setting:

  median  the median over pairs of (monitored step time / plain step time): what a typical step costs
  mean    total monitored time / total plain time: includes the sampled steps, where the probes work

    python bench/monitor_overhead.py                 # both models, every setting
    python bench/monitor_overhead.py --pairs 400     # more pairs, tighter figures (re-measure on a quiet machine)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from torchmedic.monitor import Monitor, MonitorConfig

SETTINGS: dict[str, MonitorConfig | None] = {
    "none (A/A: the noise floor)": None,
    "default (every=10)": MonitorConfig(),
    "every=1": MonitorConfig(every=1),
    "every=5": MonitorConfig(every=5),
    "every=50": MonitorConfig(every=50),
    "every=10, activations=False": MonitorConfig(activations=False),
    "every=10, updates=False": MonitorConfig(updates=False),
}


class SimpleCNN(nn.Module):
    """Two conv blocks and a linear head for 3x32x32 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 16, 16, 16)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 32, 8, 8)
        return self.fc(x.flatten(1))


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.short = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.short(x))


class SmallResNet(nn.Module):
    """A CIFAR-style ResNet with three stages of two basic blocks (ResNet-14, ~0.17M parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.stages = nn.Sequential(
            Block(16, 16, 1), Block(16, 16, 1), Block(16, 32, 2), Block(32, 32, 1), Block(32, 64, 2), Block(64, 64, 1)
        )
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, 64, 8, 8)
        return self.fc(x.mean(dim=(2, 3)))


MODELS: dict[str, Callable[[], nn.Module]] = {"SimpleCNN": SimpleCNN, "SmallResNet": SmallResNet}


def measure(make: Callable[[], nn.Module], config: MonitorConfig | None, pairs: int, batch: int) -> tuple[float, float]:
    """(median of paired step-time ratios, ratio of total times) for monitored vs plain training; with no config,
    both copies train plain (how far from 1 the figures land by chance)."""
    torch.manual_seed(0)
    plain = make()
    torch.manual_seed(0)
    watched = make()
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)
    opt_watched = torch.optim.SGD(watched.parameters(), lr=0.01, momentum=0.9)
    batches = [(torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))) for _ in range(8)]

    def step(model: nn.Module, optimizer: torch.optim.Optimizer, i: int, monitor: Monitor | None) -> float:
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        optimizer.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.log(loss=loss, outputs=out, targets=y)
        return time.perf_counter() - start

    for i in range(10):  # warm-up: allocator, kernels
        step(plain, opt_plain, i, None)
        step(watched, opt_watched, i, None)
    t_plain, t_watched = [], []
    with Monitor(watched, opt_watched, config=config or MonitorConfig()) as active:
        monitor = active if config is not None else None
        if monitor is None:
            active.close()
        for i in range(pairs):
            if i % 2 == 0:
                t_plain.append(step(plain, opt_plain, i, None))
                t_watched.append(step(watched, opt_watched, i, monitor))
            else:
                t_watched.append(step(watched, opt_watched, i, monitor))
                t_plain.append(step(plain, opt_plain, i, None))
    paired = statistics.median(w / p for w, p in zip(t_watched, t_plain, strict=True))
    return paired, sum(t_watched) / sum(t_plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=300, help="monitored/plain step pairs per measurement")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, {args.pairs} pairs")
    print(f"{'model':<12} {'setting':<30} {'median':>7} {'mean':>7} {'plain step':>11}")
    for model_name in args.models:
        for setting in args.settings:
            start = time.perf_counter()
            median, mean = measure(MODELS[model_name], SETTINGS[setting], args.pairs, args.batch)
            per_step = (time.perf_counter() - start) / (2 * args.pairs) / ((1 + mean) / 2)
            print(f"{model_name:<12} {setting:<30} {median:>7.3f} {mean:>7.3f} {per_step * 1e3:>9.1f}ms", flush=True)


if __name__ == "__main__":
    main()
