"""Causes no automatic remedy may fix: the data or the forward pass itself must change, and only the user knows how."""

from __future__ import annotations

from torchmedic.finding import Finding
from torchmedic.repair.draft import Draft
from torchmedic.repair.remedy import Outcome, Refused, RemedyFn, remedy
from torchmedic.repair.workspace import Workspace

REASONS = {
    "data.nonfinite": "imputing NaN/Inf silently would hide where they come from (missing data, log(0), a division "
    "by zero): clean them where the data is prepared",
    "data.labels_unrelated": "the labels do not belong to their inputs: only re-joining inputs and labels correctly "
    "can give them a signal",
    "data.low_variability": "every sample is (nearly) the same input: the Dataset or its conversion must be fixed",
    "arch.batch_mixing": "forward mixes samples of the batch (a view instead of permute, a softmax or mean over "
    "dim 0): only your forward can be changed to keep samples apart",
}


def _refusal(reason: str) -> RemedyFn:
    def refuse(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
        """Say why the cause stays; the finding's fix says what to change."""
        return Refused(reason)

    return refuse


for _cause, _reason in REASONS.items():
    remedy(_cause, stage="data")(_refusal(_reason))
