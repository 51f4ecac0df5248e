"""Which process this is in a distributed run, and the one reduction the monitor makes per sampled step."""

from __future__ import annotations

import torch
import torch.distributed as dist


def _ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if _ready() else 0


def world_size() -> int:
    return dist.get_world_size() if _ready() else 1


def all_reduce_sum(packed: torch.Tensor) -> None:
    """Add `packed` up across ranks in place (every rank packs the same statistics in the same order)."""
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
