"""`torchmedic fix FILE.py`: repair the setup a file defines, print what changed and the proof, optionally save."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from torchmedic import progress
from torchmedic.cli.diagnose_cmd import write_json
from torchmedic.cli.userfile import EXECUTES, load
from torchmedic.clone import unwrap
from torchmedic.errors import InputError
from torchmedic.render.repair_text import render
from torchmedic.repair import repair

EXIT_REPAIRED, EXIT_NOT_REPAIRED = 0, 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fix",
        help="repair a setup that gives the same output, and prove the repair works",
        description="Load FILE.py (model, loader, loss_fn and optionally optimizer, or a setup() function returning "
        "them), diagnose it, apply the remedies to copies, verify them with a short training run on held-out "
        "samples and print the lines to change in your script. Exit 0 when repaired and verified, 1 when causes "
        "remain or the repair did not verify, 2 on usage or input errors.",
        epilog=EXECUTES,
    )
    parser.add_argument("file", help="a Python file defining model, loader, loss_fn[, optimizer]")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds to spend at most (default 60)")
    parser.add_argument("--device", default=None, help="run on this device (default: the model's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (none is shown off a terminal or in CI)")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON to PATH ('-' for stdout)")
    parser.add_argument(
        "--save",
        metavar="PATH",
        help="torch.save the repaired model's state_dict to PATH (your model's parameter names: load it after "
        "making the changes)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.budget > 0:
        raise InputError(f"--budget {args.budget}: give a positive number of seconds.")
    console = Console(stderr=args.json == "-")
    setup = load(args.file)
    with progress.showing("repairing", args.budget, progress.wanted(args.quiet)):
        result = repair(
            setup.model, setup.loader, setup.loss_fn, setup.optimizer, device=args.device, budget_s=args.budget
        )
    render(result, console)
    if args.json:
        write_json(result.to_dict(), args.json)
    if args.save:
        torch.save(unwrap(result.model).state_dict(), Path(args.save))
        console.print(f"[dim]saved the repaired weights to {args.save}[/dim]")
    return EXIT_REPAIRED if result.repaired else EXIT_NOT_REPAIRED
