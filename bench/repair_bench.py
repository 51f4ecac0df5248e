"""Measure torchmedic.repair() on every faulty bench case: train the repaired objects with the case's own loop (for
at least MIN_TRAIN_STEPS steps) and judge them as bench/validate.py does (learned = well above chance without a
collapse, or R² clearly above 0).

Run from the repository root: `python bench/repair_bench.py [--suite mutation|real|all] [--split dev|holdout|all]
[--case SUBSTRING] [--budget SECONDS] [--json PATH] [--threads N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torchmedic
from torchmedic.fixes import FIXES

import bench.real  # noqa: F401  (registers the real-program suite)
from bench.cases import Case, Setup, all_cases
from bench.metrics import evaluate
from bench.training import train
from bench.validate import Thresholds, judge

MIN_TRAIN_STEPS = 300  # a case's own budget is what shows its failure; learning is judged over a few epochs at least

BY_DESIGN = frozenset(c for c, r in FIXES.items() if r.by_hand)  # left to the user: NaN data, unrelated labels, mixing
UNFIXABLE_CASES = {  # faulty by a cause repair() can fix elsewhere, but not in this form
    "data_single_class": "only one class survives the filter: no remedy can add the others",
    "optim_numpy_round_trip": "a numpy round trip inside forward cuts the graph: only the user's forward can change",
    "optim_detached_output": "forward returns a detached output: only the user's forward can change",
}


@dataclass(frozen=True)
class Result:
    """repair() on one case, then the case's training loop on what it returned, judged on the held-out data."""

    name: str
    split: str
    expected: tuple[str, ...]
    fixable: bool
    changes: tuple[str, ...]  # the causes each applied change answers
    unresolved: tuple[str, ...]
    verified: bool
    learned: bool
    seconds: float  # repair() alone
    metrics: str
    error: str = ""


def fixable(case: Case) -> bool:
    """Whether an automatic repair is possible in principle: no expected cause is left to the user by design."""
    return case.name not in UNFIXABLE_CASES and not set(case.expected) & BY_DESIGN


def run(case: Case, budget_s: float, limits: Thresholds) -> Result:
    """Build the case, repair it (timed), train the repaired objects for the case's steps and judge them."""
    setup = case.build()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bugs themselves warn; the table says what matters
        try:
            repaired = torchmedic.repair(setup.model, setup.loader, setup.loss_fn, setup.optimizer, budget_s=budget_s)
        except Exception as exc:  # a crash is a failure, shown in the table
            error = f"{type(exc).__name__}: {exc}"
            return Result(case.name, case.split, case.expected, fixable(case), (), (), False, False,
                          time.perf_counter() - start, "", error)  # fmt: skip
        seconds = time.perf_counter() - start
        fixed = Setup(
            repaired.model, repaired.loader, repaired.loss_fn, repaired.optimizer, setup.eval_loader, setup.task
        )
        trained = train(fixed, max(case.train_steps, MIN_TRAIN_STEPS))
        learned, text = False, trained.error or f"non-finite loss at step {trained.steps}"
        if not trained.error and trained.finite:
            try:
                metrics = evaluate(fixed)
                text = str(metrics)
                learned = metrics.finite and judge(metrics, limits)[1]
            except Exception as exc:  # a model that cannot even predict has not learned
                text = f"evaluation: {type(exc).__name__}: {exc}"
    changes = tuple(",".join(c.causes) for c in repaired.changes)
    unresolved = tuple(u.cause for u in repaired.unresolved)
    return Result(case.name, case.split, case.expected, fixable(case), changes, unresolved, repaired.verified, learned,
                  seconds, text)  # fmt: skip


def row(r: Result) -> str:
    expected = ",".join(r.expected)
    changes = " ".join(r.changes) or "-"
    unresolved = ",".join(r.unresolved) or "-"
    verdict = "LEARNED" if r.learned else ("fail" if r.fixable else "fail (by design)")
    detail = f"raised {r.error}"[:80] if r.error else r.metrics
    return (
        f"{r.name:32} {expected:38} {changes[:44]:44} {unresolved[:26]:26} {'yes' if r.verified else 'no':8} "
        f"{verdict:16} {r.seconds:6.1f}  {detail}"
    )


def summary(results: list[Result], split: str) -> str:
    """Learned share over every faulty case and over the fixable ones, and repair() seconds."""
    fixable_results = [r for r in results if r.fixable]
    learned = sum(r.learned for r in results)
    learned_fixable = sum(r.learned for r in fixable_results)
    seconds = [r.seconds for r in results] or [float("nan")]
    return (
        f"learned {learned}/{len(results)} ({100 * learned / max(1, len(results)):.0f}%) of faulty cases, "
        f"{learned_fixable}/{len(fixable_results)} ({100 * learned_fixable / max(1, len(fixable_results)):.0f}%) of "
        f"fixable ones; verified {sum(r.verified for r in results)}; repair median {statistics.median(seconds):.1f} s, "
        f"max {max(seconds):.1f} s (split={split})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="all", choices=("dev", "holdout", "all"))
    parser.add_argument("--suite", default="mutation", choices=("mutation", "real", "all"))
    parser.add_argument("--case", default="", help="only cases whose name contains this")
    parser.add_argument("--budget", type=float, default=60.0, help="budget_s passed to repair()")
    parser.add_argument("--json", type=Path, help="write the per-case results and the summary here")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 (default) keeps torch's default")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)  # script only: comparable timings on shared CPU machines
    cases = [c for c in all_cases(args.split, args.suite) if not c.healthy and args.case in c.name]
    limits = Thresholds()
    print(
        f"{'case':32} {'expected':38} {'changes applied':44} {'unresolved':26} {'verified':8} {'verdict':16} "
        f"{'s':>6}  held-out after the case's training"
    )
    results = []
    for case in cases:
        results.append(run(case, args.budget, limits))
        print(row(results[-1]), flush=True)
    line = summary(results, f"{args.split}, suite={args.suite}")
    print(line)
    if args.json:
        records = [asdict(r) for r in results]
        args.json.write_text(json.dumps({"summary": line, "budget_s": args.budget, "cases": records}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
