"""Prove each bench case is what it claims: train it normally; a faulty case must fail, a healthy one must learn.

Run from the repository root: `python bench/validate.py [--case SUBSTRING] [--split dev|holdout|all]`.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.real  # noqa: F401  (registers the real-program suite)
from bench.cases import Case, all_cases
from bench.metrics import Metrics, evaluate
from bench.training import TrainResult, train


@dataclass(frozen=True)
class Thresholds:
    """Where "failed" and "learned" lie; the gap between them is a WRONG verdict for both kinds of case."""

    max_failed_skill: float = 0.15  # balanced accuracy at most 15% of the way from chance to perfect: chance level
    min_collapsed_fraction: float = 0.9  # 90% of predictions on one class: the model gives one answer
    max_failed_r2: float = 0.1  # R² near 0 or below: the regression predicts (about) a constant
    min_learned_skill: float = 0.5  # half-way from chance to perfect: it clearly learned
    min_learned_r2: float = 0.25  # diabetes, the hardest regression here: least squares reaches 0.36 on its split


@dataclass(frozen=True)
class Outcome:
    """One validated case: how training went, the held-out metrics, and whether that is what the case claims."""

    case: Case
    result: TrainResult
    metrics: Metrics | None
    error: str
    failed: bool
    learned: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.learned if self.case.healthy else self.failed


def validate(case: Case, limits: Thresholds = Thresholds()) -> Outcome:
    """Build the case, train it for its budget, evaluate it on held-out data and judge the result."""
    start = time.perf_counter()
    setup = case.build()  # seeded: the RNG state after it, hence dropout and shuffling, is the same on every run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # broadcast and other warnings are part of some bugs; the table tells
        result = train(setup, case.train_steps)
        metrics, error = None, result.error
        if not error and result.finite:
            try:
                metrics = evaluate(setup)
            except Exception as exc:  # a model that cannot even predict has failed
                error = f"evaluation: {type(exc).__name__}: {exc}"
    failed, learned = True, False  # an error or a non-finite loss or output is a failure
    if not error and result.finite and metrics is not None and metrics.finite:
        failed, learned = judge(metrics, limits)
    return Outcome(case, result, metrics, error, failed, learned, time.perf_counter() - start)


def judge(metrics: Metrics, limits: Thresholds) -> tuple[bool, bool]:
    """(failed, learned) from finite held-out metrics."""
    if metrics.task == "regression":
        return metrics.r2 <= limits.max_failed_r2, metrics.r2 >= limits.min_learned_r2
    # on a 95/5 held-out set a perfect model puts 95% on one class: collapse is half-way beyond the true majority
    collapse_at = max(limits.min_collapsed_fraction, (1 + metrics.majority_fraction) / 2)
    collapsed = metrics.top_class_fraction >= collapse_at
    failed = collapsed or metrics.skill <= limits.max_failed_skill
    return failed, not collapsed and metrics.skill >= limits.min_learned_skill


def describe(outcome: Outcome) -> str:
    """The metric column: the error, the non-finite loss, or the held-out metrics."""
    if outcome.error:
        return f"raised {outcome.error}"[:90]
    if not outcome.result.finite:
        return f"non-finite loss at step {outcome.result.steps}"
    loss = f"loss {outcome.result.first_loss:.3g}->{outcome.result.last_loss:.3g}"
    return f"{outcome.metrics}  {loss}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="", help="only cases whose name contains this")
    parser.add_argument("--split", default="all", choices=("dev", "holdout", "all"))
    parser.add_argument("--suite", default="mutation", choices=("mutation", "real", "all"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # script only: the bench machines are shared; one thread per run keeps them usable
    cases = [c for c in all_cases(args.split, args.suite) if args.case in c.name]
    start = time.perf_counter()
    print(f"{'case':34} {'split':7} {'expected':40} {'verdict':7} {'s':>5}  metrics")
    outcomes = []
    for case in cases:
        outcome = validate(case)
        outcomes.append(outcome)
        verdict = "OK" if outcome.ok else "WRONG"
        expected = "healthy" if case.healthy else ",".join(case.expected)
        print(
            f"{case.name:34} {case.split:7} {expected:40} {verdict:7} {outcome.seconds:5.1f}  {describe(outcome)}",
            flush=True,
        )
    wrong = [o.case.name for o in outcomes if not o.ok]
    print(
        f"{len(outcomes) - len(wrong)}/{len(outcomes)} OK, {len(wrong)} WRONG"
        f"{': ' + ', '.join(wrong) if wrong else ''}  ({time.perf_counter() - start:.0f} s)"
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
