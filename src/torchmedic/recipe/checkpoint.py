"""Checkpoints that resume a run bit-for-bit: weights, optimizer, schedule, every generator the run draws from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchmedic.errors import InputError

FILENAME = "checkpoint.pt"


def save(path: Path, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         loader_generator: torch.Generator, history: list[dict[str, float]]) -> None:  # fmt: skip
    """Write the state after `epoch` (1-based) atomically: a run killed while saving keeps its previous checkpoint."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "loader": loader_generator.get_state(),
        },
        "history": history,
    }
    partial = path.with_suffix(".tmp")
    torch.save(state, partial)
    os.replace(partial, path)


def load(path: Path) -> dict[str, Any]:
    """A checkpoint read with `weights_only=True`: tensors and plain containers only, never arbitrary objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file raises pickle, zip or runtime errors
        raise InputError(f"{path} is not a readable torchmedic checkpoint ({type(exc).__name__}: {exc}).") from exc


def restore(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            loader_generator: torch.Generator) -> None:  # fmt: skip
    """Put the run back where `save` left it."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    loader_generator.set_state(state["rng"]["loader"])
