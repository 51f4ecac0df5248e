"""The reference recipe against its targets: `torchmedic train` run as a user runs it, timed end to end.

Each row is one `torchmedic train` command in a fresh process (import, data, pre-flight diagnosis, LR range test,
training and evaluation all counted), with its final test accuracy read from the run's metrics.json.

  digits / simplecnn, the defaults:  >= 97% test accuracy in <= 60 s on 2 CPU cores
  cifar10 / simplecnn, the defaults: >= 65%      cifar10 / resnet, the defaults: >= 90%

    python bench/train_bench.py                        # digits, both models
    python bench/train_bench.py --cifar data           # also CIFAR-10 from data/cifar-10-batches-py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {
    ("digits", "simplecnn"): (0.97, 60.0),
    ("cifar10", "simplecnn"): (0.65, None),
    ("cifar10", "resnet"): (0.90, None),
}


def run(data: str, model: str, out: Path, extra: list[str]) -> tuple[float, float, int]:
    """Test accuracy, wall seconds and epochs of one `torchmedic train` command."""
    command = [sys.executable, "-m", "torchmedic", "train", "--data", data, "--model", model, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run([*command, "--quiet", *extra], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1) or not (out / "metrics.json").is_file():
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    history = json.loads((out / "metrics.json").read_text())
    return history[-1]["test_accuracy"], seconds, len(history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", metavar="ROOT", help="also train on CIFAR-10 read from ROOT")
    parser.add_argument("--device", default="auto", help="passed to torchmedic train")
    args = parser.parse_args()
    rows = [("digits", "digits", "simplecnn"), ("digits", "digits", "resnet")]
    if args.cifar:
        rows += [("cifar10", f"cifar10:{args.cifar}", "simplecnn"), ("cifar10", f"cifar10:{args.cifar}", "resnet")]
    print(f"{'data':<8} {'model':<10} {'epochs':>6} {'test acc':>9} {'seconds':>8}  target")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, model in rows:
            accuracy, seconds, epochs = run(data, model, Path(tmp) / f"{name}-{model}", ["--device", args.device])
            target = TARGETS.get((name, model))
            if target is None:
                verdict = "-"
            else:
                least, most = target
                met = accuracy >= least and (most is None or seconds <= most)
                limit = f" in <= {most:.0f} s" if most is not None else ""
                verdict = f">= {least:.0%}{limit}: {'met' if met else 'MISSED'}"
            print(f"{name:<8} {model:<10} {epochs:>6} {accuracy:>9.4f} {seconds:>8.1f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
