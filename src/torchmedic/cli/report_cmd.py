"""`torchmedic report PATH -o report.html`: a saved diagnosis (JSON) or a monitor log directory as one HTML page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from torchmedic.errors import InputError
from torchmedic.monitor.events import FILENAME
from torchmedic.render.html import diagnosis_page, write
from torchmedic.render.monitor_html import monitor_page
from torchmedic.render.repair_html import repair_page


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="turn a saved diagnosis, repair or monitor log into one self-contained HTML page",
        description="PATH is the JSON written by `torchmedic diagnose --json` or `torchmedic fix --json`, or a monitor "
        "log directory (or its "
        f"{FILENAME}). The page has no external references: hand it to a colleague as one file.",
    )
    parser.add_argument("path", help="a diagnosis JSON file, or a monitor log directory / event log")
    parser.add_argument("-o", "--output", help="where to write the HTML (default: PATH with .html)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    source = Path(args.path)
    events = source / FILENAME if source.is_dir() else source
    if not events.is_file():
        raise InputError(f"{args.path}: no such file (expected a diagnosis JSON or a monitor log directory)")
    output = Path(args.output) if args.output else events.with_suffix(".html")
    text = events.read_text(encoding="utf-8")
    if events.suffix == ".jsonl":
        page = monitor_page(_event_lines(events, text))
    else:
        data = _report(events, text)
        page = repair_page(data) if "diagnosis" in data else diagnosis_page(data)
    write(page, output)
    print(f"wrote {output} ({len(page.encode()) / 1024:.0f} KiB)")
    return 0


def _report(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc}); expected the output of `torchmedic diagnose --json`") from exc
    if not isinstance(data, dict) or ("findings" not in data and "diagnosis" not in data):
        raise InputError(f"{path}: not a diagnosis or repair report; write one with `torchmedic diagnose --json`")
    return data


def _event_lines(path: Path, text: str) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(text.splitlines()):  # only the last line may be cut short by a crash
                raise InputError(f"{path}:{number}: not a JSON line of the monitor's event log") from None
    return events
