"""`torchmedic run train.py [ARGS...]`: run an unmodified training script with the live monitor on."""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

from torchmedic.cli import EXIT_FINDINGS, EXIT_HEALTHY, EXIT_USAGE
from torchmedic.cli.userfile import EXECUTES
from torchmedic.finding import Finding
from torchmedic.monitor import distributed
from torchmedic.monitor.auto import AutoMonitor
from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.events import compact
from torchmedic.monitor.monitor import stop_causes
from torchmedic.monitor.session import StopTraining


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a training script with the live monitor on",
        description="Run an unmodified training script; print each cause of a collapse the moment it is "
        "confirmed, and a summary at exit. Exit code: 0 healthy, 1 findings, 2 usage or input errors.",
        epilog=EXECUTES,
    )
    parser.add_argument("--json", metavar="PATH", help="write the findings and the last signals as JSON")
    parser.add_argument("--log-dir", metavar="DIR", help="write the JSONL event log (and TensorBoard events) here")
    parser.add_argument("--every", type=int, metavar="N", help=f"sample one step in N (default {MonitorConfig.every})")
    parser.add_argument(
        "--stop-on",
        metavar="CAUSES",
        help="stop training at the first confirmed finding of these comma-separated cause codes ('any' for all)",
    )
    parser.add_argument("script", help="the training script (a .py file)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    parser.set_defaults(run=handle)


def format_finding(finding: Finding) -> str:
    lines = [
        f"torchmedic: step {finding.step}: {finding.cause} (confidence {finding.confidence:.2f})",
        f"  {finding.summary}",
    ]
    lines += [f"  - {e}" for e in finding.evidence]
    if finding.fix.advice:
        lines.append(f"  fix: {finding.fix.advice}")
        lines += [f"    {line}" for line in finding.fix.code.splitlines()]
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    script = Path(args.script)
    if not script.is_file():
        print(f"torchmedic: error: no such script: {script}", file=sys.stderr)
        return EXIT_USAGE
    if args.every is not None and args.every < 1:
        print(f"torchmedic: error: --every must be >= 1 (got {args.every})", file=sys.stderr)
        return EXIT_USAGE
    stop_on = stop_causes(
        [c.strip() for c in args.stop_on.split(",")] if args.stop_on and args.stop_on != "any" else args.stop_on
    )
    config = MonitorConfig() if args.every is None else MonitorConfig(every=args.every)
    quiet = distributed.rank() != 0
    monitor = AutoMonitor(
        config,
        log_dir=args.log_dir,
        stop_on=stop_on,
        on_finding=None if quiet else lambda f: print(format_finding(f), file=sys.stderr, flush=True),
    )
    status, crashed, stopped = _run_script(script, args.args, monitor)
    findings = monitor.findings
    if not quiet:
        print(summary(monitor, findings, stopped), file=sys.stderr)
    if args.json and not quiet:
        report = {
            "script": str(script),
            "healthy": not findings,
            "steps": monitor.steps,
            "findings": [f.to_dict() for f in findings],
            "script_exit": status,
            "script_crashed": crashed,
            "signals": [compact(session.signals) for _, session in monitor.sessions],
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
    if findings:
        return EXIT_FINDINGS
    return EXIT_USAGE if crashed or status not in (None, 0) else EXIT_HEALTHY


def _run_script(script: Path, argv: list[str], monitor: AutoMonitor) -> tuple[Any, bool, bool]:
    """Run `script` as __main__ under `monitor`: (its exit status, whether it crashed, whether torchmedic stopped
    it)."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.resolve().parent))
    status: Any = None
    crashed = stopped = False
    monitor.start()
    try:
        runpy.run_path(str(script), run_name="__main__")
    except StopTraining:
        stopped = True
    except SystemExit as exc:
        status = exc.code
    except KeyboardInterrupt:
        crashed = True
        print("torchmedic: interrupted", file=sys.stderr)
    except BaseException:
        crashed = True
        traceback.print_exc()
    finally:
        monitor.close()
        sys.argv, sys.path[:] = saved_argv, saved_path
    return status, crashed, stopped


def summary(monitor: AutoMonitor, findings: list[Finding], stopped: bool) -> str:
    steps = monitor.steps
    if not monitor.sessions:
        if not findings:
            return "torchmedic: the script made no optimizer step: nothing to monitor."
        lines = [f"  {f.cause}: {f.summary}" for f in findings]
        return "\n".join(["torchmedic: the script made no optimizer step:", *lines])
    sampled = sum(s.history.sampled for _, s in monitor.sessions)
    head = f"torchmedic: {steps} optimizer steps, {sampled} sampled"
    if stopped:
        head += ", stopped early (--stop-on)"
    if not findings:
        return head + ": no findings."
    lines = [head + f": {len(findings)} finding{'s' if len(findings) > 1 else ''}"]
    lines += [f"  step {f.step}: {f.cause}: {f.summary}" for f in findings]
    return "\n".join(lines)
