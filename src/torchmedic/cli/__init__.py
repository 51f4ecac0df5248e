"""The `torchmedic` command: one subcommand per module of this package, each with `register` and `run`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from torchmedic.errors import TorchMedicError

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
    try:
        return int(args.run(args))
    except TorchMedicError as exc:
        print(f"torchmedic: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
