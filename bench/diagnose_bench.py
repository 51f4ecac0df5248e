"""Measure torchmedic.diagnose() on the bench: top-1 cause, top-3 recall, false alarms on healthy setups, seconds.

Run from the repository root: `python bench/diagnose_bench.py [--split dev|holdout|all] [--case SUBSTRING]
[--budget SECONDS] [--json PATH] [--threads N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torchmedic
from torchmedic.batch import unpack
from torchmedic.config import DEFAULT_BUDGET_S

import bench.real  # noqa: F401  (registers the real-program suite)
from bench.cases import Case, all_cases

TOP_K = 3  # findings that count for recall: a user reads the first few


@dataclass(frozen=True)
class Result:
    """diagnose() on one case: the causes it named (with confidences), how long it took, and the error it raised."""

    name: str
    split: str
    expected: tuple[str, ...]
    causes: tuple[tuple[str, float], ...]
    seconds: float
    error: str = ""
    cifar_size: bool = False  # a 3x32x32 input in batches of 64-128: the setups the speed target is stated for
    said_healthy: bool = False  # report.healthy: the baseline trial measured no symptom

    @property
    def healthy(self) -> bool:
        return not self.expected

    @property
    def top1(self) -> bool | None:
        """The first finding is one of the expected causes (a raise is a miss); None for a healthy case."""
        if self.healthy:
            return None
        return not self.error and bool(self.causes) and self.causes[0][0] in self.expected

    @property
    def recall(self) -> float | None:
        """Fraction of the expected causes among the first TOP_K findings; None for a healthy case."""
        if self.healthy:
            return None
        named = {cause for cause, _ in self.causes[:TOP_K]}
        return 0.0 if self.error else len(named & set(self.expected)) / len(self.expected)

    @property
    def false_alarm(self) -> bool | None:
        """A healthy case with any finding, or on which diagnose() raised; None for a faulty case."""
        if not self.healthy:
            return None
        return bool(self.error) or bool(self.causes)


def run(case: Case, budget_s: float) -> Result:
    """Build the case and diagnose it, timed; an exception from diagnose() is recorded, not raised."""
    setup = case.build()
    causes: tuple[tuple[str, float], ...] = ()
    error = ""
    said_healthy = False
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bugs themselves warn (broadcasting, log(0)); the table says what matters
        try:
            report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer, budget_s=budget_s)
            causes = tuple((f.cause, float(f.confidence)) for f in report.findings)
            said_healthy = report.healthy
        except Exception as exc:  # a crash on a bench case is a miss, shown in the table
            error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    return Result(case.name, case.split, case.expected, causes, seconds, error, _cifar_size(setup.loader), said_healthy)


def _cifar_size(loader: Iterable[Any]) -> bool:
    x = unpack(next(iter(loader))).first_input
    return tuple(x.shape[1:]) == (3, 32, 32) and 64 <= x.shape[0] <= 128


def row(result: Result) -> str:
    """One table line: the first TOP_K causes, '*' on each expected one, and the verdict."""
    expected = ",".join(result.expected) or "healthy"
    if result.error:
        named = f"raised {result.error}"[:100]
    else:
        named = "  ".join(
            f"{cause} {confidence:.2f}{'*' if cause in result.expected else ''}"
            for cause, confidence in result.causes[:TOP_K]
        ) or ("healthy" if result.said_healthy else "symptom, no cause confirmed")
    if result.healthy:
        verdict = "FALSE ALARM" if result.false_alarm else "ok"
    else:
        found = round((result.recall or 0.0) * len(result.expected))
        verdict = f"{'hit' if result.top1 else 'miss'} {found}/{len(result.expected)}"
    return f"{result.name:34} {result.split:7} {expected:40} {verdict:11} {result.seconds:6.1f}  {named}"


def summary(results: list[Result], split: str) -> str:
    """The one-line score: top-1 accuracy and top-3 recall on faulty cases, false alarms on healthy ones, time."""
    faulty = [r for r in results if not r.healthy]
    healthy = [r for r in results if r.healthy]
    top1 = statistics.fmean(bool(r.top1) for r in faulty) if faulty else float("nan")
    top3 = statistics.fmean(r.recall or 0.0 for r in faulty) if faulty else float("nan")
    alarms = sum(bool(r.false_alarm) for r in healthy)
    missed = sum(r.said_healthy for r in faulty)
    share = 100.0 * alarms / len(healthy) if healthy else 0.0
    seconds = [r.seconds for r in results] or [float("nan")]
    cifar_times = [r.seconds for r in results if r.cifar_size]
    cifar = cifar_times or [float("nan")]
    return (
        f"top-1 {top1:.2f}  top-3 {top3:.2f}  false alarms {alarms}/{len(healthy)} ({share:.0f}%)  "
        f"faulty called healthy {missed}/{len(faulty)}  "
        f"median {statistics.median(seconds):.1f} s  max {max(seconds):.1f} s  "
        f"(CIFAR-size CNNs: median {statistics.median(cifar):.1f} s  max {max(cifar):.1f} s, n={len(cifar_times)})  "
        f"({len(faulty)} faulty, {len(healthy)} healthy, split={split})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="all", choices=("dev", "holdout", "all"))
    parser.add_argument("--suite", default="mutation", choices=("mutation", "real", "all"))
    parser.add_argument("--case", default="", help="only cases whose name contains this")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="budget_s passed to diagnose()")
    parser.add_argument("--json", type=Path, help="write the per-case results and the summary here")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 (default) keeps torch's default")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)  # script only: comparable single-thread timings on shared CPU machines
    cases = [c for c in all_cases(args.split, args.suite) if args.case in c.name]
    print(f"{'case':34} {'split':7} {'expected':40} {'verdict':11} {'s':>6}  first {TOP_K} findings (* = expected)")
    results = []
    for case in cases:
        results.append(run(case, args.budget))
        print(row(results[-1]), flush=True)
    line = summary(results, args.split)
    print(line)
    if args.json:
        records = [{**asdict(r), "top1": r.top1, "recall": r.recall, "false_alarm": r.false_alarm} for r in results]
        args.json.write_text(json.dumps({"summary": line, "budget_s": args.budget, "cases": records}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
