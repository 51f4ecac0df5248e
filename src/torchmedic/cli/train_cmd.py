"""`torchmedic train`: the reference recipe (SimpleCNN or a small ResNet on digits, CIFAR-10 or an image folder) with
every safeguard on, leaving a resumable run directory."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from torchmedic import progress
from torchmedic.cli import EXIT_FINDINGS, EXIT_HEALTHY
from torchmedic.cli.run_cmd import format_finding
from torchmedic.errors import InputError
from torchmedic.models import MODELS
from torchmedic.recipe import TrainConfig, TrainResult, train
from torchmedic.recipe.config import DEFAULT_EPOCHS, DEVICES, OPTIMIZERS, SCHEDULES
from torchmedic.render.text import render

EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C
RUN_DIR = (
    "The run directory holds config.json (every setting, the LR found and the normalization used), metrics.json "
    "(loss and accuracy per epoch), findings.json, preflight.json/.html (the diagnosis), monitor/ and monitor.html "
    "(the live monitor), tensorboard/, checkpoint.pt (the last epoch, for --resume) and model.pt (the final weights)."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the reference CNN recipe with every safeguard on",
        description="Train SimpleCNN or a small ResNet the classic way: Normalize from the data's statistics, "
        "random-crop and flip on the training images only, Kaiming/Xavier init, the LR from a range test, AdamW "
        "with a one-cycle schedule, a pre-flight diagnosis that stops a broken setup, and the live monitor. "
        f"{RUN_DIR} Exit code: 0 trained with no finding, 1 stopped by the pre-flight diagnosis or findings, "
        "2 usage or input errors, 130 interrupted (continue with --resume).",
    )
    setting = functools.partial(parser.add_argument, default=argparse.SUPPRESS)  # absent unless given: see _given
    setting("--data", help="digits (default; bundled, no download), cifar10[:ROOT] (ROOT default "
                        "./data, downloaded when online) or folder:PATH (an ImageFolder)")  # fmt: skip
    setting("--model", choices=MODELS, help="simplecnn (default) or resnet (ResNet-9)")
    setting("--optimizer", choices=OPTIMIZERS, help="adamw (default, weight decay 0.01), adam or sgd")
    setting("--lr", type=_lr, help="a learning rate, or auto (default): the LR range test picks it")
    epochs = ", ".join(f"{m} {n}" for m, n in DEFAULT_EPOCHS.items())
    setting("--epochs", type=int, help=f"epochs to train (default {epochs})")
    setting("--batch-size", type=int, help=f"training batch size (default {TrainConfig.batch_size})")
    setting("--schedule", choices=SCHEDULES, help="LR schedule per batch (default onecycle)")
    setting("--image-size", type=int, help="resize images to this square size (default: their own)")
    setting("--seed", type=int, help=f"seed of the init, shuffling and augmentation (default "
                        f"{TrainConfig.seed})")  # fmt: skip
    setting("--device", choices=DEVICES, help="auto (default: cuda when there is one), cpu or cuda")
    setting("--workers", type=int, help="DataLoader worker processes (default 0)")
    parser.add_argument("--out", help="the run directory (default runs/DATA-MODEL)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, "
                        "bit-for-bit; only --device, --workers and --no-monitor may differ")  # fmt: skip
    parser.add_argument("--no-preflight", action="store_true", help="train even when the pre-flight diagnosis "
                        "finds the setup broken")  # fmt: skip
    parser.add_argument("--no-monitor", action="store_true", help="train without the live monitor")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no line per epoch")
    parser.set_defaults(run=run)


def _lr(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'auto'") from None


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, and only those, so that --resume can tell them from defaults."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if args.no_preflight:
        given["preflight"] = False
    if args.no_monitor:
        given["monitor"] = False
    return given


def _out(args: argparse.Namespace, given: dict[str, Any]) -> Path:
    """--out, or runs/DATA-MODEL from the data and model given (the defaults otherwise)."""
    if args.out:
        return Path(args.out)
    data = str(given.get("data", TrainConfig.data)).split(":", 1)[0]
    return Path("runs") / f"{data}-{given.get('model', TrainConfig.model)}"


def run(args: argparse.Namespace) -> int:
    given = _given(args)
    console = Console(stderr=True)
    out = _out(args, given)
    config = _resumed(out, given) if args.resume else TrainConfig(**given)
    show_bar = progress.wanted(args.quiet)
    verbose = not args.quiet
    plan = f"{config.model} on {config.data} with {config.optimizer}, {_epochs(config.total_epochs)}"
    print(f"torchmedic train: {plan} -> {out}", file=sys.stderr)
    try:
        result = train(config, out, resume=args.resume, progress=show_bar,
                       on_epoch=_epoch_line(config.total_epochs) if verbose and not show_bar else None)  # fmt: skip
    except KeyboardInterrupt:
        print(f"torchmedic train: interrupted; continue with: torchmedic train --out {out} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _finish(result, console)


def _resumed(out: Path, given: dict[str, Any]) -> TrainConfig:
    """The first run's config with the explicitly given settings over it (train() rejects any that may not change)."""
    from torchmedic.recipe.run_dir import CONFIG, read_json

    if not (out / CONFIG).is_file():
        raise InputError(f"--resume: {out / CONFIG} not found; start the run without --resume.")
    first = TrainConfig.from_dict(read_json(out / CONFIG)["config"])
    return dataclasses.replace(first, **given)


def _epochs(count: int) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"


def _epoch_line(total: int) -> Any:
    def show(row: dict[str, float]) -> None:
        print(f"epoch {int(row['epoch'])}/{total}: train loss {row['train_loss']:.4f} acc "
              f"{row['train_accuracy']:.3f}  test loss {row['test_loss']:.4f} acc {row['test_accuracy']:.3f}  "
              f"({row['seconds']:.1f} s)", file=sys.stderr, flush=True)  # fmt: skip

    return show


def _finish(result: TrainResult, console: Console) -> int:
    if result.stopped == "preflight" and result.preflight is not None:
        render(result.preflight, console)
        report = result.out / "preflight.html"
        print(
            f"torchmedic train: the pre-flight diagnosis found this setup broken, so nothing was trained "
            f"(report: {report}). Fix it, or pass --no-preflight to train anyway.",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    for finding in result.findings:
        print(format_finding(finding), file=sys.stderr)
    last = result.history[-1] if result.history else None
    score = f"test accuracy {last['test_accuracy']:.4f} after {_epochs(int(last['epoch']))}" if last else "no epoch run"
    print(f"torchmedic train: {score} (lr {result.lr:.3g}, {result.lr_source}); "
          f"{len(result.findings)} monitor finding(s); run in {result.out}", file=sys.stderr)  # fmt: skip
    return EXIT_FINDINGS if result.findings else EXIT_HEALTHY
