"""The training progress bar: epoch, batches done, running loss and accuracy (rich, on a terminal only)."""

from __future__ import annotations

from typing import Any

from torchmedic.recipe.epochs import Tally


class EpochBar:
    """One rich progress line per run, reset each epoch; `enabled=False` draws nothing."""

    def __init__(self, epochs: int, batches: int, enabled: bool) -> None:
        self.epochs, self.batches = epochs, batches
        self._progress: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/" + str(epochs)),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("train", total=batches, epoch=0, loss=float("nan"), acc=float("nan"))
            self._progress.start()

    def start_epoch(self, epoch: int) -> None:
        if self._progress is not None:
            self._progress.reset(self._task, total=self.batches, epoch=epoch, loss=float("nan"), acc=float("nan"))

    def batch(self, tally: Tally) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, loss=tally.mean_loss, acc=tally.accuracy)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
