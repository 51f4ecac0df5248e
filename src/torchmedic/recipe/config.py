"""What one run of the recipe is: data, model, optimizer, schedule and their defaults, each with its reason."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torchmedic.errors import InputError
from torchmedic.models import MODELS

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("onecycle", "cosine", "none")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_EPOCHS = {"simplecnn": 30, "resnet": 24}  # ResNet-9 reaches 94% on CIFAR-10 in 24 one-cycle epochs
FALLBACK_LR = {"adamw": 1e-3, "adam": 1e-3, "sgd": 0.1}  # used when the range test finds no LR (the usual defaults)
WEIGHT_DECAY = {"adamw": 0.01, "adam": 0.0, "sgd": 5e-4}  # AdamW's decoupled default; SGD's classic CIFAR value
SGD_MOMENTUM = 0.9  # with Nesterov, the classic CIFAR recipe


@dataclass(frozen=True)
class TrainConfig:
    """One run of the classic recipe; `lr=None` means "auto": the LR range test picks it."""

    data: str = "digits"  # digits | cifar10[:ROOT] | folder:PATH
    model: str = "simplecnn"  # simplecnn | resnet
    optimizer: str = "adamw"
    lr: float | None = None
    epochs: int | None = None  # None: DEFAULT_EPOCHS of the model
    batch_size: int = 128
    schedule: str = "onecycle"  # per batch; one-cycle warms up from lr/25, which keeps a large found LR stable
    image_size: int | None = None  # None: the data's own size
    seed: int = 0
    device: str = "auto"  # cuda when there is one
    workers: int = 0  # DataLoader worker processes
    preflight: bool = True  # diagnose() before training, and stop when the setup is broken
    preflight_budget_s: float = 10.0
    monitor: bool = True

    def __post_init__(self) -> None:
        named = (
            ("model", self.model, MODELS),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("device", self.device, DEVICES),
        )
        for name, value, choices in named:
            if value not in choices:
                raise InputError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}.")
        for name in ("batch_size", "epochs", "image_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name}={value}: give a positive number.")
        if self.lr is not None and not self.lr > 0:
            raise InputError(f"lr={self.lr}: give a positive learning rate, or 'auto' to have one found.")
        if self.workers < 0:
            raise InputError(f"workers={self.workers}: give 0 (load in this process) or more.")

    @property
    def total_epochs(self) -> int:
        return self.epochs or DEFAULT_EPOCHS[self.model]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
