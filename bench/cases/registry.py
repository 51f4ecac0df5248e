"""The case registry: every bench setup is a build function registered with `@case`, like timm's register_model."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from torchmedic.causes import CAUSES

from bench.data import Split, eval_loader, loader

TASKS = ("classification", "binary", "regression")
BUILD_SEED = 0  # every build starts from this RNG state: weights, data shuffles and dropout are the same each run
SPLITS = ("dev", "holdout")


@dataclass(frozen=True)
class Setup:
    """What a user hands to diagnose(): model, training loader, loss, optimizer; plus held-out data to validate on."""

    model: nn.Module
    loader: Iterable[Any]
    loss_fn: Callable[..., torch.Tensor]
    optimizer: torch.optim.Optimizer | None
    eval_loader: Iterable[Any]
    task: str

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")


def on_split(
    d: Split,
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
    task: str,
    batch_size: int = 64,
) -> Setup:
    """The usual setup: a shuffled training loader over the split's training part, held-out data in fixed order."""
    return Setup(model, loader(d.x_train, d.y_train, batch_size), loss_fn, optimizer,
                 eval_loader(d.x_test, d.y_test), task)  # fmt: skip


@dataclass(frozen=True)
class Case:
    """A named setup with the cause codes it should be diagnosed with (none: healthy)."""

    name: str
    expected: tuple[str, ...]
    build: Callable[[], Setup]
    split: str
    description: str
    train_steps: int

    @property
    def healthy(self) -> bool:
        """No cause expected: diagnose() should report no finding."""
        return not self.expected


_CASES: dict[str, Case] = {}


def case(*expected: str, split: str = "dev", steps: int = 300) -> Callable[[Callable[[], Setup]], Callable[[], Setup]]:
    """Register the decorated build function as a case named after it; its docstring is the description."""
    unknown = [code for code in expected if code not in CAUSES]
    if unknown:
        raise ValueError(f"unknown cause codes {unknown}; see docs/causes.md")
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")

    def register(build: Callable[[], Setup]) -> Callable[[], Setup]:
        name = build.__name__
        if name in _CASES:
            raise ValueError(f"case {name!r} is already registered")
        _CASES[name] = Case(name, expected, _seeded(build), split, inspect.getdoc(build) or "", steps)
        return build

    return register


def _seeded(build: Callable[[], Setup]) -> Callable[[], Setup]:
    """The build function with torch's and numpy's global RNGs seeded first, so every build is identical."""

    @functools.wraps(build)
    def seeded_build() -> Setup:
        torch.manual_seed(BUILD_SEED)
        np.random.seed(BUILD_SEED)
        return build()

    return seeded_build


def all_cases(split: str = "all") -> list[Case]:
    """Every registered case of `split` ("dev", "holdout" or "all"), in registration order."""
    return [c for c in _CASES.values() if split in ("all", c.split)]


def get_case(name: str) -> Case:
    """The case registered under `name`."""
    if name not in _CASES:
        raise KeyError(f"no case named {name!r}")
    return _CASES[name]
