"""`torchmedic diagnose FILE.py`: diagnose the setup a file defines, print the findings, optionally write JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from torchmedic.cli.userfile import load
from torchmedic.doctor import diagnose
from torchmedic.render.text import render

EXIT_HEALTHY, EXIT_FINDINGS = 0, 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="find out why a setup gives the same output",
        description="Load FILE.py (it defines model, loader, loss_fn and optionally optimizer, or a setup() "
        "function returning them), run short experiments on copies and print the likely root causes.",
    )
    parser.add_argument("file", help="a Python file defining model, loader, loss_fn[, optimizer]")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds to spend at most (default 30)")
    parser.add_argument("--device", default=None, help="run on this device (default: the model's)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH ('-' for stdout)")
    parser.set_defaults(run=run)


def write_json(data: dict[str, Any], path: str) -> None:
    text = json.dumps(data, indent=2)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).write_text(text + "\n")


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json == "-")
    setup = load(args.file)
    with console.status("torchmedic: running experiments on copies of your model..."):
        report = diagnose(
            setup.model, setup.loader, setup.loss_fn, setup.optimizer, device=args.device, budget_s=args.budget
        )
    render(report, console)
    if args.json:
        write_json(report.to_dict(), args.json)
    return EXIT_HEALTHY if report.healthy else EXIT_FINDINGS
