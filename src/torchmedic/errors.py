"""The one exception family: every error torchmedic raises says what the user passed and what would work."""

from __future__ import annotations


class TorchMedicError(Exception):
    """Base class of every error raised by torchmedic."""


class InputError(TorchMedicError, ValueError):
    """The model, loader, loss or optimizer given to torchmedic cannot be used as passed."""


class ModelError(TorchMedicError, RuntimeError):
    """The user's model raised while torchmedic ran it; the message names the layer and the shapes."""


class LossError(TorchMedicError, RuntimeError):
    """The user's loss function raised on the model's outputs; the message names both shapes."""


class TorchMedicWarning(UserWarning):
    """A probe could not run and was skipped; the rest of the work goes on."""
