"""The bench's cases, grouped by theme; importing this package registers them all."""

from bench.cases import arch, data, healthy, init, loss, lr, mode, multi, optim, pooled  # noqa: F401  (registers the cases)
from bench.cases.registry import Case, Setup, all_cases, case, get_case

__all__ = ["Case", "Setup", "all_cases", "case", "get_case"]
