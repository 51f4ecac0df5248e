"""Causes no automatic fix may change: the data or the forward pass itself must change, and only the user knows
how. Each fix refuses with the reason and the lines to change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchmedic.fixes.registry import FixFn, Outcome, Refused, fix
from torchmedic.setup import Setup

if TYPE_CHECKING:
    from torchmedic.context import Context

BY_HAND = {
    "data.nonfinite": (
        "imputing NaN/Inf silently would hide where they come from (missing data, log(0), a division by zero): clean "
        "them where the data is prepared",
        "x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)  # or impute with the column mean\n"
        "assert torch.isfinite(x).all() and torch.isfinite(y).all()",
    ),
    "data.labels_unrelated": (
        "the labels do not belong to their inputs: only re-joining inputs and labels correctly can give them a signal",
        "perm = torch.randperm(len(x))\nx, y = x[perm], y[perm]  # the same permutation for both",
    ),
    "data.low_variability": (
        "every sample is (nearly) the same input: the Dataset or its conversion must be fixed",
        "sample_a, sample_b = dataset[0][0], dataset[1][0]\nassert not torch.equal(sample_a, sample_b)",
    ),
    "arch.batch_mixing": (
        "forward mixes samples of the batch (a view instead of permute, a softmax or mean over dim 0): only your "
        "forward can be changed to keep samples apart",
        "x = x.permute(1, 0, 2)  # (N, T, F) -> (T, N, F), not x.view(T, N, F)\n"
        "x = torch.flatten(x, 1)  # per sample, not x.view(-1, K)\n"
        "probabilities = logits.softmax(dim=1)  # over classes, never dim=0",
    ),
}


def _refusal(reason: str, code: str) -> FixFn:
    def refuse(ctx: Context, setup: Setup, option: int) -> Outcome:
        """Say why the cause stays, and what to change."""
        return Refused(reason, code=code)

    return refuse


for _cause, (_reason, _code) in BY_HAND.items():
    fix(_cause, stage="data", by_hand=True)(_refusal(_reason, _code))
