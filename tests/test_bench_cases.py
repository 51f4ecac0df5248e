"""Fast checks of the bench's cases: they build, their loaders yield, and the split covers docs/causes.md."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, r2_score

from bench.cases import Case, Setup, all_cases
from bench.metrics import classification_metrics, regression_metrics
from bench.training import split_batch

CAUSES_MD = Path(__file__).resolve().parents[1] / "docs" / "causes.md"
ROW = re.compile(r"^\| `(?P<code>[a-z_]+\.[a-z_]+)` \|.*\| (?P<seen_by>[a-z, ]+) \|$")
FREQUENT = (  # the causes most reports name: each keeps an untouched variant in the holdout split
    "arch.output_activation",
    "data.class_imbalance",
    "init.too_small",
    "init.too_large",
    "loss.double_softmax",
    "lr.too_high",
    "lr.too_low",
    "optim.not_updating",
)
CASES = all_cases()
FAULTY = [c for c in CASES if not c.healthy]
HEALTHY = [c for c in CASES if c.healthy]


def documented_causes() -> dict[str, set[str]]:
    """Cause code -> where it is seen ("pre", "live"), read from the table in docs/causes.md."""
    rows = (ROW.match(line.strip()) for line in CAUSES_MD.read_text().splitlines())
    return {m["code"]: {s.strip() for s in m["seen_by"].split(",")} for m in rows if m}


def first_batch(loader: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    return split_batch(next(iter(loader)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_builds_and_runs_one_batch(case: Case) -> None:
    setup = case.build()
    assert isinstance(setup, Setup)
    assert isinstance(setup.optimizer, torch.optim.Optimizer)
    assert case.train_steps > 0 and case.description
    for loader in (setup.loader, setup.eval_loader):
        x, y = first_batch(loader)
        assert len(x) == len(y) > 0
        with torch.no_grad():
            out = setup.model.eval()(x[:4])  # a few samples: the point is that the model runs on the loader's batches
        if "arch.batch_mixing" not in case.expected:  # a reshape bug may legitimately break one row per sample
            assert out.shape[0] == len(x[:4])


@pytest.mark.parametrize("case", CASES[::7], ids=lambda c: c.name)
def test_build_is_deterministic(case: Case) -> None:
    first, second = case.build(), case.build()
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(first_batch(first.loader), first_batch(second.loader), strict=True):
        assert torch.equal(a, b)


def test_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


def test_expected_codes_are_documented_pre_causes() -> None:
    causes = documented_causes()
    assert len(causes) >= 20, "the cause table in docs/causes.md was not parsed"
    for case in FAULTY:
        for code in case.expected:
            assert "pre" in causes.get(code, set()), f"{case.name}: {code} is not a pre cause of docs/causes.md"


def test_every_pre_cause_has_a_case() -> None:
    pre = {code for code, seen_by in documented_causes().items() if "pre" in seen_by}
    covered = {code for case in FAULTY for code in case.expected}
    assert pre <= covered, f"no case for {sorted(pre - covered)}"


def test_bench_size() -> None:
    assert len(FAULTY) >= 40
    assert len(HEALTHY) >= 14
    assert sum(len(c.expected) >= 2 for c in FAULTY) >= 4


def test_holdout_split() -> None:
    holdout = [c for c in FAULTY if c.split == "holdout"]
    assert 0.2 <= len(holdout) / len(FAULTY) <= 0.3
    assert sum(c.split == "holdout" for c in HEALTHY) == 4
    dev_causes = {code for c in FAULTY if c.split == "dev" for code in c.expected}
    holdout_causes = {code for c in holdout for code in c.expected}
    assert holdout_causes <= dev_causes, f"only in holdout: {sorted(holdout_causes - dev_causes)}"
    assert set(FREQUENT) <= holdout_causes, f"no holdout variant of {sorted(set(FREQUENT) - holdout_causes)}"


def testclassification_metrics_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    metrics = classification_metrics("classification", torch.from_numpy(pred), torch.from_numpy(y))
    assert metrics.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, pred))
    assert metrics.chance == 0.25
    assert metrics.top_class_fraction == pytest.approx(np.bincount(pred).max() / 200)


def testregression_metrics_metric_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y, out = rng.normal(size=100), rng.normal(size=100)
    assert regression_metrics(torch.from_numpy(out), torch.from_numpy(y)).r2 == pytest.approx(r2_score(y, out))


SCRIPTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "bench").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_bench_script_imports(script: str) -> None:
    """A bench script that no longer imports (a module it names was removed) fails here, not when someone runs it."""
    importlib.import_module(f"bench.{script}")
