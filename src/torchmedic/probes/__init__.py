"""Probes measure; they never decide. Importing this package registers every probe (see `registry.PROBES`)."""

from torchmedic.probes import (  # noqa: F401  (import registers the probes)
    activations,
    data_audit,
    init_loss,
    lr_range,
    outputs,
    sensitivity,
    structure,
    trial_probe,
)
