"""How good are LR suggestions? torchmedic.find_lr vs torch-lr-finder vs Lightning's lr_find, judged by training.

For each task the three finders run on the same model, data and optimizer; then the model is trained with each
suggested LR for a fixed short budget over 3 seeds, and the mean held-out accuracy is divided by that of the best
LR on a log-spaced grid (same budget, same seeds). Run: `python bench/lr_bench.py` (add `--dev` to skip the held-out
tasks, which are kept aside to check that the suggestion rule was not tuned to the others).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lr_tasks import TASKS, LRTask, Split

import torchmedic

SEEDS = (0, 1, 2)
GRID = tuple(float(10**e) for e in np.arange(-5, 1.01, 0.25))  # 1e-5 .. 10, four points per decade
START_LR, END_LR, NUM_ITER = 1e-7, 10.0, 100  # the same range test for every finder
CACHE = Path(__file__).resolve().parent.parent / "out" / "lr_bench_cache.json"
METHODS = ("torchmedic", "torch-lr-finder", "lightning")


def loader(split: Split, batch_size: int, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(split.x_train, split.y_train), batch_size=batch_size, shuffle=True,
                      generator=generator)  # fmt: skip


def fresh(task: LRTask, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return task.model()


def train_accuracy(task: LRTask, split: Split, lr: float, seed: int) -> float:
    """Held-out accuracy after `task.epochs` epochs at a constant `lr` (a diverged model scores what it predicts)."""
    model = fresh(task, seed)
    optimizer = task.optimizer(model.parameters(), lr)
    for _ in range(task.epochs):
        for x, y in loader(split, task.batch_size, seed):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    with torch.no_grad():
        pred = model(split.x_test).nan_to_num(0.0).argmax(1)
    return float((pred == split.y_test).float().mean())


def suggest_torchmedic(task: LRTask, split: Split) -> tuple[float | None, str]:
    model = fresh(task, 0)
    result = torchmedic.find_lr(model, loader(split, task.batch_size, 0), F.cross_entropy,
                                task.optimizer(model.parameters(), 1e-3), start_lr=START_LR, end_lr=END_LR,
                                num_iter=NUM_ITER)  # fmt: skip
    rules = ", ".join(f"{name} {lr:.3g}" for name, lr in result.candidates)
    return result.suggestion, f"confidence {result.confidence:.2f}, {result.stop.value}; {rules}"


def suggest_torch_lr_finder(task: LRTask, split: Split) -> tuple[float | None, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch_lr_finder import LRFinder

    model = fresh(task, 0)
    finder = LRFinder(model, task.optimizer(model.parameters(), START_LR), torch.nn.CrossEntropyLoss())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader(split, task.batch_size, 0), end_lr=END_LR, num_iter=NUM_ITER)
        ax, lr = finder.plot(suggest_lr=True)  # its suggestion only comes out of plot()
    plt.close(ax.figure)
    return float(lr), "steepest np.gradient of the loss per step"


def suggest_lightning(task: LRTask, split: Split) -> tuple[float | None, str]:
    import lightning as L
    from lightning.pytorch.tuner import Tuner

    class Wrapped(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = fresh(task, 0)
            self.lr = 1e-3

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
            x, y = batch
            return F.cross_entropy(self.model(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return task.optimizer(self.parameters(), self.lr)

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("lightning")]:
        logging.getLogger(name).setLevel(logging.ERROR)  # its INFO lines and tips would drown the table
    with (
        tempfile.TemporaryDirectory() as root,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, default_root_dir=root)  # fmt: skip
        finder = Tuner(trainer).lr_find(Wrapped(), train_dataloaders=loader(split, task.batch_size, 0),
                                        min_lr=START_LR, max_lr=END_LR,
                                        num_training=NUM_ITER, update_attr=False)  # fmt: skip
    lr = None if finder is None else finder.suggestion()
    return (None if lr is None else float(lr)), "steepest torch.gradient of the loss w.r.t. lr"


SUGGESTERS: dict[str, Callable[[LRTask, Split], tuple[float | None, str]]] = {
    "torchmedic": suggest_torchmedic,
    "torch-lr-finder": suggest_torch_lr_finder,
    "lightning": suggest_lightning,
}


class Cache:
    """Accuracies and the other finders' suggestions, kept between runs: iterating on the rule retrains nothing."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled
        self.data: dict[str, Any] = json.loads(path.read_text()) if enabled and path.exists() else {}

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.data:
            self.data[key] = compute()
            if self.enabled:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps(self.data))
        return self.data[key]


def task_key(task: LRTask) -> str:
    return f"{task.name}/{task.optimizer_name}/b{task.batch_size}/e{task.epochs}"


def mean_accuracy(cache: Cache, task: LRTask, split: Split, lr: float) -> float:
    accs = [cache.get(f"acc|{task_key(task)}|{lr:.6g}|{seed}", partial(train_accuracy, task, split, lr, seed))
            for seed in SEEDS]  # fmt: skip
    return statistics.fmean(accs)


def run_task(task: LRTask, cache: Cache, verbose: bool) -> dict[str, float]:
    split = task.data()
    grid = {lr: mean_accuracy(cache, task, split, lr) for lr in GRID}
    best_lr = max(grid, key=lambda lr: grid[lr])
    best = grid[best_lr]
    print(f"\n{task.name}{' (held out)' if task.held_out else ''}: {task.optimizer_name}, {task.epochs} epochs, "
          f"batch {task.batch_size}; best grid lr {best_lr:.3g} -> accuracy {best:.3f}")  # fmt: skip
    if verbose:
        print("  grid: " + "  ".join(f"{lr:.2g}:{acc:.3f}" for lr, acc in grid.items()))
    good = [lr for lr, acc in grid.items() if acc >= 0.97 * best]
    print(f"  grid LRs within 97% of the best: {min(good):.3g} .. {max(good):.3g}")
    print(f"  {'method':<16} {'suggested lr':>12} {'accuracy':>9} {'ratio':>6}  notes")
    ratios = {}
    for method in METHODS:
        if method == "torchmedic":
            lr, notes = SUGGESTERS[method](task, split)
        else:
            lr, notes = cache.get(f"suggest|{method}|{task_key(task)}", partial(SUGGESTERS[method], task, split))
        acc = math.nan if lr is None else mean_accuracy(cache, task, split, lr)
        ratios[method] = 0.0 if lr is None else acc / best
        shown = "none" if lr is None else f"{lr:.3g}"
        print(f"  {method:<16} {shown:>12} {acc:>9.3f} {ratios[method]:>6.3f}  {notes}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="skip the held-out tasks")
    parser.add_argument("--tasks", help="comma-separated task names")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print the accuracy at every grid LR")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    tasks = [t for t in TASKS if not (args.dev and t.held_out) and (not args.tasks or t.name in args.tasks.split(","))]
    cache = Cache(CACHE, not args.no_cache)
    started = time.perf_counter()
    results = {task.name: run_task(task, cache, args.verbose) for task in tasks}
    print(f"\nsummary over {len(results)} tasks (accuracy ratio to the best grid LR; 3 seeds):")
    for method in METHODS:
        values = [r[method] for r in results.values()]
        print(f"  {method:<16} median {statistics.median(values):.3f}  worst {min(values):.3f}")
    held = [t.name for t in tasks if t.held_out]
    print(f"held-out tasks: {', '.join(held) or 'none run'}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
