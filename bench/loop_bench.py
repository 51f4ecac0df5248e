"""The loop-bug benchmark: run every script of bench/loop_bugs under `torchmedic run` and score the monitor.

Each script names what it expects in its docstring (`expect: <cause code>` or `expect: healthy`) and when the
symptom starts (`onset: <step>`, or `onset: traced` for scripts that print `ONSET <step>` when run without
torchmedic and with LOOPBUG_TRACE=1). A faulty script is detected when the expected cause is among the
findings; its delay is the step of that finding minus the onset. Any finding on a healthy script is a false
alarm, and so is any other cause on a faulty one (reported as "also").

    python bench/loop_bench.py                  # all scripts
    python bench/loop_bench.py --held-out       # only the scripts kept out of tuning
    python bench/loop_bench.py relu_head nan_features
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "loop_bugs"
HELD_OUT = (
    "nan_features",
    "relu_head",
    "eval_after_validation",
    "healthy_imbalanced_weighted",
    "healthy_zero_grad_mid",
    "u_plateau_stepped_with_batch_loss",
    "u_numpy_loss_rewrapped",
    "u_dropout_as_keep_prob",
    "u_log_sales_zero_days",
    "u_dataset_leaked_loop_index",
    "u_healthy_multilabel_trainer",
    "u_healthy_friedman_early_stopping",
)  # written before tuning, run only at the end
MAX_DELAY = 100  # the target: named within 100 steps of the symptom's onset
CLI = [sys.executable, "-c", "import sys; from torchmedic.cli import main; sys.exit(main())"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}  # 2 shared cores: no thread contention


@dataclass
class Result:
    script: str
    expect: str
    onset: int | None
    found: list[str] = field(default_factory=list)
    steps: dict[str, int | None] = field(default_factory=dict)
    exit_code: int = 0
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.expect == "healthy"

    @property
    def detected(self) -> bool:
        return not self.healthy and self.expect in self.found

    @property
    def caught(self) -> int | None:
        return self.steps.get(self.expect)

    @property
    def delay(self) -> int | None:
        return None if self.caught is None or self.onset is None else self.caught - self.onset

    @property
    def false_alarms(self) -> list[str]:
        return [c for c in self.found if c != self.expect]


def header(path: Path) -> tuple[str, str]:
    text = path.read_text()
    expect = re.search(r"^expect:\s*(\S+)", text, re.M)
    onset = re.search(r"^onset:\s*(\S+)", text, re.M)
    if expect is None:
        raise SystemExit(f"{path.name}: no 'expect:' line in its docstring")
    return expect.group(1), onset.group(1) if onset else ""


def traced_onset(path: Path) -> int | None:
    """Run the script without torchmedic, with LOOPBUG_TRACE=1, and read its ONSET line."""
    out = subprocess.run(
        [sys.executable, str(path)], env={**ENV, "LOOPBUG_TRACE": "1"}, capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"^ONSET (\d+)", out, re.M)
    return int(match.group(1)) if match else None


def run(path: Path, every: int | None) -> Result:
    expect, onset_text = header(path)
    onset = traced_onset(path) if onset_text == "traced" else (int(onset_text) if onset_text.isdigit() else None)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [*CLI, "run", "--json", str(report)]
        command += ["--every", str(every)] if every else []
        start = time.perf_counter()
        done = subprocess.run([*command, str(path)], env=ENV, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if not report.exists():
            raise SystemExit(f"{path.name}: torchmedic run wrote no report (exit {done.returncode}):\n{done.stderr}")
        data = json.loads(report.read_text())
    found = [f["cause"] for f in data["findings"]]
    steps = {f["cause"]: f["step"] for f in reversed(data["findings"])}
    return Result(path.stem, expect, onset, found, steps, done.returncode, seconds)


def table(results: list[Result]) -> str:
    rows = [
        f"{'script':<30} {'expected':<28} {'named':<6} {'onset':>5} {'caught':>6} {'delay':>5}  also / false alarms"
    ]
    for r in results:
        named = "-" if r.healthy else ("yes" if r.detected else "NO")
        onset = "" if r.onset is None or r.healthy else str(r.onset)
        caught = "" if r.caught is None else str(r.caught)
        delay = "" if r.delay is None else str(r.delay)
        mark = "*" if r.script in HELD_OUT else " "
        rows.append(
            f"{r.script + mark:<30} {r.expect:<28} {named:<6} {onset:>5} {caught:>6} {delay:>5}  "
            f"{', '.join(r.false_alarms)}"
        )
    return "\n".join(rows)


def summary(results: list[Result]) -> str:
    faulty = [r for r in results if not r.healthy]
    healthy = [r for r in results if r.healthy]
    delays = [r.delay for r in faulty if r.delay is not None]
    late = [r.script for r in faulty if r.delay is not None and r.delay > MAX_DELAY]
    return "\n".join(
        [
            f"faulty scripts named with the right cause: {sum(r.detected for r in faulty)}/{len(faulty)}",
            f"healthy scripts with a false alarm: {sum(bool(r.found) for r in healthy)}/{len(healthy)}",
            f"faulty scripts with an extra cause: {sum(bool(r.false_alarms) for r in faulty)}/{len(faulty)}",
            f"delay from onset (steps): median {sorted(delays)[len(delays) // 2] if delays else '-'}, "
            f"max {max(delays) if delays else '-'}; over {MAX_DELAY}: {late or 'none'}",
            "(* held out: not run while the rules were tuned)",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="script names (default: all)")
    parser.add_argument("--held-out", action="store_true", help="only the held-out scripts")
    parser.add_argument("--every", type=int, help="the monitor's sampling period (default: the monitor's)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    names = args.names or (list(HELD_OUT) if args.held_out else sorted(p.stem for p in SCRIPTS.glob("[!_]*.py")))
    results = []
    for name in names:
        result = run(SCRIPTS / f"{name}.py", args.every)
        print(f"{name}: {result.found or 'no findings'} ({result.seconds:.1f}s)", file=sys.stderr, flush=True)
        results.append(result)
    print(table(results))
    print()
    print(summary(results))
    if args.json:
        Path(args.json).write_text(
            json.dumps([asdict(r) | {"detected": r.detected, "delay": r.delay} for r in results], indent=2)
        )
    faulty_missed = any(not r.healthy and not r.detected for r in results)
    alarms = any(r.healthy and r.found for r in results)
    return 1 if faulty_missed or alarms else 0


if __name__ == "__main__":
    sys.exit(main())
