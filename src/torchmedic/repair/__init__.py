"""repair(): apply the fix of each diagnosed cause to copies, verify it with a pilot run, say what to change."""

import torchmedic.fixes  # noqa: F401  (the import registers the fixes)
from torchmedic.repair.change import Change, Unresolved
from torchmedic.repair.config import RepairConfig
from torchmedic.repair.pilot import Pilot
from torchmedic.repair.repair import repair
from torchmedic.repair.result import Attempt, RepairResult

__all__ = ["Attempt", "Change", "Pilot", "RepairConfig", "RepairResult", "Unresolved", "repair"]
