"""Rules that read the training monitor's signals (seen by: live). Importing this package registers them."""

from torchmedic.rules.live import arch, data, init, loss, lr, mode, optim  # noqa: F401  (import registers the rules)
