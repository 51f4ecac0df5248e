"""Which process this is in a distributed run, and the one reduction the monitor makes per sampled step."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def _ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank; before the process group exists, the one a launcher such as torchrun assigned."""
    if _ready():
        return dist.get_rank()
    launched = os.environ.get("RANK", "0")
    return int(launched) if launched.isdigit() else 0


def world_size() -> int:
    return dist.get_world_size() if _ready() else 1


def all_reduce_sum(packed: torch.Tensor) -> None:
    """Add `packed` up across ranks in place (every rank packs the same statistics in the same order)."""
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
