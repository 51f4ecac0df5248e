"""Load the setup a user file defines: `model`, `loader`, `loss_fn` and optionally `optimizer`.

A file either defines those names at module level (aliases `train_loader`, `criterion` are accepted), or a
function `setup()` that returns them as a dict with those keys or as a tuple (model, loader, loss_fn[, optimizer]).
The file runs with `__name__ == "__torchmedic__"`, so an `if __name__ == "__main__":` training block is skipped.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchmedic.errors import InputError

ALIASES = {
    "model": ("model", "net"),
    "loader": ("loader", "train_loader", "dataloader"),
    "loss_fn": ("loss_fn", "criterion", "loss"),
    "optimizer": ("optimizer", "opt"),
}


@dataclass(frozen=True)
class UserSetup:
    model: nn.Module
    loader: Iterable[Any]
    loss_fn: Callable[..., Any]
    optimizer: torch.optim.Optimizer | None


def _pick(namespace: Mapping[str, Any], key: str) -> Any:
    return next((namespace[n] for n in ALIASES[key] if n in namespace), None)


def load(path: str) -> UserSetup:
    """Run the file and collect its setup, with an error naming what is missing."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file")
    try:
        namespace = runpy.run_path(str(file), run_name="__torchmedic__")
    except SystemExit as exc:
        raise InputError(f"{path} called sys.exit({exc.code}) while loading") from exc
    except Exception as exc:
        raise InputError(f"{path} raised while loading: {type(exc).__name__}: {exc}") from exc
    if callable(namespace.get("setup")):
        try:
            returned = namespace["setup"]()
        except Exception as exc:
            raise InputError(f"{path}: setup() raised {type(exc).__name__}: {exc}") from exc
        if isinstance(returned, Mapping):
            namespace = dict(returned)
        elif isinstance(returned, (tuple, list)) and len(returned) in (3, 4):
            namespace = dict(zip(("model", "loader", "loss_fn", "optimizer"), returned, strict=False))
        else:
            raise InputError(
                f"{path}: setup() must return a dict or a tuple (model, loader, loss_fn[, optimizer]), "
                f"not {type(returned).__name__}"
            )
    found = {key: _pick(namespace, key) for key in ALIASES}
    missing = [key for key in ("model", "loader", "loss_fn") if found[key] is None]
    if missing:
        raise InputError(
            f"{path} defines no {', '.join(missing)}: define "
            + " / ".join(f"`{ALIASES[k][0]}`" for k in missing)
            + " at module level, or a setup() function returning them."
        )
    return UserSetup(found["model"], found["loader"], found["loss_fn"], found["optimizer"])
