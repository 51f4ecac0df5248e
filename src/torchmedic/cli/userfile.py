"""Load the setup a user file defines: `model`, `loader`, `loss_fn` and optionally `optimizer`.

A file either defines those names at module level (aliases `train_loader`, `criterion` are accepted), or a
function `setup()` that returns them as a dict with those keys or as a tuple (model, loader, loss_fn[, optimizer]).
The file runs with `__name__ == "__torchmedic__"`, so an `if __name__ == "__main__":` training block is skipped.
"""

from __future__ import annotations

import ast
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
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
TRAINING_CALLS = ("backward", "step")  # a file calling these at module level trains when loaded: a script
EXECUTES = (
    "Security: the file is executed as Python code with your permissions, as `python` would run it; "
    "run only files you trust. torchmedic itself opens no network connection."
)


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
    return from_namespace(namespace, path)


def declares_setup(path: str) -> bool:
    """Whether the file names its setup for torchmedic: a top-level `setup()` function, or top-level assignments of
    a model, a loader and a loss with no training outside functions and the `__main__` block. Any other file is a
    training script, run until its first optimizer step (`torchmedic.capture`)."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return True  # let load() report the error in its own words
    if any(isinstance(node, ast.FunctionDef) and node.name == "setup" for node in tree.body):
        return True
    top = [node for node in tree.body if not isinstance(node, DEFINITIONS) and not _is_main_block(node)]
    assigned = {n.id for node in top if isinstance(node, (ast.Assign, ast.AnnAssign)) for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}  # fmt: skip
    trains = any(isinstance(n, ast.Attribute) and n.attr in TRAINING_CALLS for node in top for n in ast.walk(node))
    return not trains and all(assigned & set(ALIASES[key]) for key in ("model", "loader", "loss_fn"))


def _is_main_block(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":`"""
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def from_namespace(namespace: Mapping[str, Any], path: str) -> UserSetup:
    """The setup a file's globals define, by name or through its setup() function."""
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
