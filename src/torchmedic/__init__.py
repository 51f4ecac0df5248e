"""torchmedic: find out why a PyTorch model always gives the same output, with evidence and a verified fix."""

from torchmedic.batch import BatchKeys
from torchmedic.causes import CAUSES
from torchmedic.errors import InputError, LossError, ModelError, TorchMedicError, TorchMedicWarning
from torchmedic.finding import Evidence, Finding, Fix, Verification
from torchmedic.signals import Signal, Signals

__all__ = [
    "CAUSES",
    "BatchKeys",
    "Evidence",
    "Finding",
    "Fix",
    "InputError",
    "LossError",
    "ModelError",
    "Signal",
    "Signals",
    "TorchMedicError",
    "TorchMedicWarning",
    "Verification",
]
