"""Probes measure; they never decide. Importing this package registers every probe (see `registry.PROBES`)."""

from torchmedic.probes import (  # noqa: F401  (import registers the probes)
    activations,
    data_audit,
    init_loss,
    linear_probe,
    lr_range,
    outputs,
    permutation,
    sensitivity,
    structure,
    trial_probe,
)
