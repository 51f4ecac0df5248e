"""repair(): apply the remedy for each diagnosed cause to copies, verify it with a pilot run, say what to change."""

from torchmedic.repair import (  # noqa: F401  (imports register the remedies)
    data_fixes,
    loss_fixes,
    lr_fix,
    model_fixes,
    optim_fixes,
    output_fixes,
    refusals,
)
from torchmedic.repair.change import Change, Unresolved
from torchmedic.repair.config import RepairConfig
from torchmedic.repair.pilot import Pilot
from torchmedic.repair.repair import repair
from torchmedic.repair.result import Attempt, RepairResult

__all__ = ["Attempt", "Change", "Pilot", "RepairConfig", "RepairResult", "Unresolved", "repair"]
