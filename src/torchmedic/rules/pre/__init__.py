"""Rules that read the signals of `diagnose()` (seen by: pre). Importing this package registers them."""

from torchmedic.rules.pre import arch, data, init, loss, lr, mode, optim  # noqa: F401
