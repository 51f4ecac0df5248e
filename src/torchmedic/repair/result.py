"""The result of repair(): the repaired objects, what changed, before/after pilots and what is left to the user."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchmedic.repair.change import Change, Unresolved
from torchmedic.repair.pilot import Pilot
from torchmedic.report import Report
from torchmedic.signals import json_safe


@dataclass(frozen=True)
class Attempt:
    """One repaired setup that was tried: its remedies, LR and pilot verdict."""

    label: str
    changes: tuple[Change, ...]
    lr: float
    pilot: Pilot

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "changes": [c.what for c in self.changes],
            "lr": self.lr,
            "pilot": self.pilot.to_dict(),
        }


@dataclass
class RepairResult:
    """`model`, `optimizer`, `loss_fn` and `loader` are ready to train (copies: the user's objects are untouched;
    `loader` is the user's unless a data remedy built a new one). `verified` says the repaired setup learned in the
    pilot on held-out samples; `unresolved` lists what only the user can change."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[..., Any]
    loader: Iterable[Any]
    changes: list[Change]
    before: Pilot | None
    after: Pilot | None
    verified: bool
    report: Report
    unresolved: list[Unresolved]
    script: str  # the lines to change in the user's script, one block
    attempts: list[Attempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def repaired(self) -> bool:
        """Verified, with nothing left for the user to change by hand."""
        return self.verified and not self.unresolved

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and Inf become strings): the diagnosis, the changes, both pilots, every attempt and
        the script."""
        data: dict[str, Any] = json_safe(
            {
                "repaired": self.repaired,
                "verified": self.verified,
                "changes": [c.to_dict() for c in self.changes],
                "unresolved": [u.to_dict() for u in self.unresolved],
                "before": None if self.before is None else self.before.to_dict(),
                "after": None if self.after is None else self.after.to_dict(),
                "attempts": [a.to_dict() for a in self.attempts],
                "script": self.script,
                "notes": list(self.notes),
                "elapsed_s": round(self.elapsed_s, 3),
                "diagnosis": self.report.to_dict(),
            }
        )
        return data

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """The repair as one self-contained HTML page, written to `path` when given."""
        from torchmedic.render.html import write
        from torchmedic.render.repair_html import repair_page

        page = repair_page(self.to_dict())
        if path is not None:
            write(page, path)
        return page

    def _repr_html_(self) -> str:
        from torchmedic.render.repair_html import repair_fragment

        return repair_fragment(self.to_dict())

    def __str__(self) -> str:
        from torchmedic.render.repair_text import plain

        return plain(self)


def script_of(changes: list[Change], unresolved: list[Unresolved]) -> str:
    """Every change's lines under a comment naming its cause, then what only the user can change."""
    blocks = [f"# {', '.join(c.causes)}\n{c.code}" for c in changes if c.code]
    blocks += [f"# still to fix by hand, {u.cause}: {u.advice}\n{u.code}".rstrip() for u in unresolved]
    return "\n\n".join(blocks)
