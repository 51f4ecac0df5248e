"""`torchmedic diagnose FILE.py [-- ARGS]`: diagnose a setup file, or an unmodified training script captured at its
first optimizer step; print the findings, optionally write JSON, optionally let the script train on monitored."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from torchmedic import progress
from torchmedic.capture import CaptureError, captured_setup, run_until_first_step
from torchmedic.capture.recorder import Recorder
from torchmedic.cli.run_cmd import format_finding, summary
from torchmedic.cli.userfile import EXECUTES, declares_setup, from_namespace, load
from torchmedic.config import DEFAULT_BUDGET_S
from torchmedic.doctor import diagnose
from torchmedic.errors import InputError
from torchmedic.monitor.auto import AutoMonitor
from torchmedic.render.text import render
from torchmedic.report import Report

EXIT_HEALTHY, EXIT_FINDINGS = 0, 1
SETUP_FORM = (
    "Name the setup instead: define model, loader, loss_fn (and optimizer) at module level, or a setup() function "
    "returning them."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="find out why a setup gives the same output",
        description="Run FILE.py until its first optimizer step, take its model, optimizer, loader and loss, run "
        "short experiments on copies and print the likely root causes; the script ends there unless --then-train. "
        "A file that defines model, loader, loss_fn [, optimizer] (or a setup() function returning them) and does "
        "not train at module level is loaded instead, its __main__ block skipped.",
        epilog=EXECUTES,
    )
    budget_help = f"seconds to spend at most (default {DEFAULT_BUDGET_S:g})"
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help=budget_help)
    parser.add_argument("--device", default=None, help="run on this device (default: the model's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (none is shown off a terminal or in CI)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH ('-' for stdout)")
    parser.add_argument("--then-train", action="store_true", help="after the report, let the script train on "
                        "under the live monitor (as `torchmedic run`)")  # fmt: skip
    parser.add_argument("file", help="a training script, or a file defining model, loader, loss_fn[, optimizer]")
    parser.add_argument("args", nargs="*", help="arguments passed to the script, after `--`")
    parser.set_defaults(run=run)


def write_json(data: dict[str, Any], path: str) -> None:
    text = json.dumps(data, indent=2)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).write_text(text + "\n")


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json == "-")
    if not Path(args.file).is_file():
        raise InputError(f"{args.file}: no such file")
    if declares_setup(args.file):
        setup = load(args.file)
        report = _diagnosed(console, args, setup.model, setup.loader, setup.loss_fn, setup.optimizer)
        return _finish(console, args, report)
    return _run_script(console, args)


def _diagnosed(console: Console, args: argparse.Namespace, *setup: Any, **options: Any) -> Report:
    with progress.showing("diagnosing", args.budget, progress.wanted(args.quiet)):
        return diagnose(*setup, device=args.device, budget_s=args.budget, **options)


def _finish(console: Console, args: argparse.Namespace, report: Report) -> int:
    render(report, console)
    if args.json:
        write_json(report.to_dict(), args.json)
    return EXIT_HEALTHY if report.healthy else EXIT_FINDINGS


def _run_script(console: Console, args: argparse.Namespace) -> int:
    """The zero-code form: capture the setup at the script's first optimizer step, diagnose it there, then end the
    script or (--then-train) let it train on under the live monitor."""
    state: dict[str, Any] = {}

    def at_step(recorder: Recorder, optimizer: torch.optim.Optimizer) -> Any:
        try:
            captured = captured_setup(recorder, optimizer)
        except CaptureError as exc:
            state["failed"] = exc
            return None
        report = _diagnosed(console, args, captured.model, captured.loader, captured.loss_fn, captured.optimizer,
                            keys=captured.keys)  # fmt: skip
        report.notes[:0] = captured.notes
        state["code"] = _finish(console, args, report)
        if not args.then_train:
            return None
        console.print("torchmedic: the script trains on under the live monitor")
        monitor = state["monitor"] = AutoMonitor(on_finding=lambda f: print(format_finding(f), file=sys.stderr))
        return monitor.start

    end = run_until_first_step(Path(args.file), args.args, at_step)
    monitor: AutoMonitor | None = state.get("monitor")
    if monitor is not None:
        monitor.close()
        print(summary(monitor, monitor.findings, False), file=sys.stderr)
    if "failed" in state:
        raise InputError(f"{args.file}: at its first optimizer step, {state['failed']}. {SETUP_FORM}")
    if "code" in state:
        if end.error is not None:
            print(f"torchmedic: the script raised {type(end.error).__name__}: {end.error}", file=sys.stderr)
        return max(state["code"], EXIT_FINDINGS if monitor is not None and monitor.findings else EXIT_HEALTHY)
    if end.error is not None:
        raise InputError(f"{args.file} raised before its first optimizer step: {type(end.error).__name__}: "
                         f"{end.error}")  # fmt: skip
    if end.namespace is None:
        raise InputError(f"{args.file} exited (status {end.status!r}) before its first optimizer step. {SETUP_FORM}")
    try:
        setup = from_namespace(end.namespace, args.file)  # no step, but the file may still name a setup
    except InputError:
        if not end.backwards:
            raise
        console.print(
            f"torchmedic: {args.file} called backward() {end.backwards} times and never optimizer.step(): the "
            "gradients are computed and thrown away, so the model cannot learn (optim.not_updating). Call "
            "optimizer.step() after loss.backward() in every iteration."
        )
        return EXIT_FINDINGS
    report = _diagnosed(console, args, setup.model, setup.loader, setup.loss_fn, setup.optimizer)
    return _finish(console, args, report)
