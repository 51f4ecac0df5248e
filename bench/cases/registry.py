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

TASKS = ("classification", "binary", "multilabel", "segmentation", "regression")
SUITES = ("mutation", "real")  # cases written as one injected bug each; programs rebuilt from public threads
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
    predict: Callable[[Any], torch.Tensor] | None = None  # output -> predictions as the user reads them (else the
    # usual: argmax over dim 1, a threshold for one output, per pixel for dense outputs; see bench.metrics.predict)

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
    suite: str = "mutation"
    source: str = ""  # the public thread a real-program case was rebuilt from

    @property
    def healthy(self) -> bool:
        """No cause expected: diagnose() should report no finding."""
        return not self.expected


_CASES: dict[str, Case] = {}


def case(
    *expected: str, split: str = "dev", steps: int = 300, source: str = ""
) -> Callable[[Callable[[], Setup]], Callable[[], Setup]]:
    """Register the decorated build function as a case named after it; its docstring is the description. Cases in
    `bench.real` form the real-program suite and must name the `source` thread they were rebuilt from."""
    unknown = [code for code in expected if code not in CAUSES]
    if unknown:
        raise ValueError(f"unknown cause codes {unknown}; see docs/causes.md")
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")

    def register(build: Callable[[], Setup]) -> Callable[[], Setup]:
        name = build.__name__
        if name in _CASES:
            raise ValueError(f"case {name!r} is already registered")
        suite = "real" if build.__module__.startswith("bench.real") else "mutation"
        if suite == "real" and not source.startswith("https://"):
            raise ValueError(f"real-program case {name!r} must name the thread it was rebuilt from (source=...)")
        doc = inspect.getdoc(build) or ""
        _CASES[name] = Case(name, expected, _seeded(build), split, doc, steps, suite, source)
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


def all_cases(split: str = "all", suite: str = "mutation") -> list[Case]:
    """Every registered case of `split` ("dev", "holdout" or "all") and `suite` ("mutation", "real" or "all"), in
    registration order."""
    return [c for c in _CASES.values() if split in ("all", c.split) and suite in ("all", c.suite)]


def get_case(name: str) -> Case:
    """The case registered under `name`."""
    if name not in _CASES:
        raise KeyError(f"no case named {name!r}")
    return _CASES[name]
