"""The `torchmedic` command: one subcommand per module of this package, each with `register` and `run`."""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from torchmedic.errors import TorchMedicError, TorchMedicWarning

COMMANDS = ("diagnose", "fix", "run", "report", "train")

EXIT_HEALTHY, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchmedic", description="Find out why a PyTorch model always gives the same output."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"torchmedic.cli.{name}_cmd").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 healthy, 1 findings, 2 usage or input errors."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_HEALTHY
    shown = warnings.showwarning
    warnings.showwarning = functools.partial(_show_warning, shown)
    try:
        return int(args.run(args))
    except TorchMedicError as exc:
        print(f"torchmedic: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        warnings.showwarning = shown


def _show_warning(shown: Any, message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """torchmedic's own warnings as one line for the user, without the library's file and source line; every
    other warning (the user's script's, torch's) as Python shows it."""
    if issubclass(category, TorchMedicWarning):
        print(f"torchmedic: warning: {message}", file=sys.stderr)
    else:
        shown(message, category, *args, **kwargs)
