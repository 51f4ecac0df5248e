"""One fix per cause: what diagnose() verifies by intervention, what repair() applies, and the code a finding shows.
Importing this package registers every fix (see `registry.FIXES`)."""

from torchmedic.fixes import by_hand, data, init, loss, lr, optim, output  # noqa: F401  (imports register the fixes)
from torchmedic.fixes.registry import FIXES, Applied, Outcome, Refused, Remedy, apply, fix

__all__ = ["FIXES", "Applied", "Outcome", "Refused", "Remedy", "apply", "fix"]
