"""A progress bar on the terminal for diagnose() and repair(): the step under way (a probe, a trial, the range test,
a fix tried on a copy, a pilot) and the time spent against the budget. Silent unless a caller turns it on, and
shown only once the work has lasted about a second."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

SHOW_AFTER_S = 1.0  # work shorter than this prints nothing


class Bar:
    """A rich progress line (the step under way, a pulsing bar, the time spent against the budget), drawn by a timer
    once the work has lasted `SHOW_AFTER_S` and removed when it ends."""

    def __init__(self, title: str, budget_s: float) -> None:
        self.title, self.budget_s = title, budget_s
        self.what = "starting"
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None
        timer = threading.Timer(SHOW_AFTER_S, self._show)
        timer.daemon = True
        self._timer: threading.Timer | None = timer
        timer.start()

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with self._lock:
            if self._timer is None:  # closed meanwhile
                return
            self._progress = Progress(
                TextColumn(f"[bold]{self.title}[/bold] {{task.description}}"),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn(f"of {self.budget_s:.0f} s at most"),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task(self.what, total=None)
            self._progress.start()

    def step(self, what: str) -> None:
        with self._lock:
            self.what = what
            if self._progress is not None:
                self._progress.update(self._task, description=what)

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


_CURRENT: ContextVar[Bar | None] = ContextVar("torchmedic_progress", default=None)


def step(what: str) -> None:
    """Say which step is starting (a no-op unless a bar is showing)."""
    bar = _CURRENT.get()
    if bar is not None:
        bar.step(what)


def wanted(quiet: bool = False) -> bool:
    """A bar only for a person at a terminal: not with --quiet, not under CI, not when stderr is redirected."""
    return not quiet and not os.environ.get("CI") and sys.stderr.isatty()


@contextmanager
def showing(title: str, budget_s: float, enabled: bool = True) -> Iterator[None]:
    """Show a bar for the work inside the block (when `enabled`)."""
    if not enabled:
        yield
        return
    bar = Bar(title, budget_s)
    token = _CURRENT.set(bar)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        bar.close()
