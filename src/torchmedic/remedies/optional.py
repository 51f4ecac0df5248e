"""Optional dependencies: imported only by the functions that need them, with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from torchmedic.errors import TorchMedicError


class MissingDependencyError(TorchMedicError, ImportError):
    """A torchmedic function needs a package that is not installed; the message names the extra to install."""


def require(module: str, extra: str, *, purpose: str) -> ModuleType:
    """Import `module`, or raise MissingDependencyError naming `pip install torchmedic[extra]`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: "
            f"run `pip install torchmedic[{extra}]` (or `pip install {module.split('.')[0]}`)."
        ) from exc
