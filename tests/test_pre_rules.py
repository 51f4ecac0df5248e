"""Table tests of the pre-flight rules as pure functions: signals, the symptom and the verdict of the cause's own
fix in, the cause named or not out; with empty, NaN and edge rows."""

from __future__ import annotations

import math
from typing import Any

import pytest

from torchmedic.finding import GONE, STAYS, Verification
from torchmedic.rules import rules_for
from torchmedic.signal_names import DECLARED
from torchmedic.signals import Signals
from torchmedic.symptom import COLLAPSED, CONSTANT, DIVERGED, LEARNS, OVERFITS, Symptom
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

PRE = {r.cause: r for r in rules_for("pre")}
T = Thresholds()


def signals(**values: Any) -> Signals:
    """`trial__held_out_gain=0.5` emits `trial.held_out_gain`; `weight__gain@fc=1.0` emits it at scope `fc`."""
    s = Signals()
    for key, value in values.items():
        name, _, scope = key.replace("__", ".").partition("@")
        assert name in DECLARED, name
        s.emit(name, value, scope)  # type: ignore[arg-type]
    return s


def symptom(kind: str | None, *, top: float | None = None, top_class: int | None = None) -> Symptom | None:
    if kind is None:
        return None
    skill = 0.8 if kind == LEARNS else 0.0
    gain = {LEARNS: 0.6, DIVERGED: -5.0, OVERFITS: -0.3}.get(kind, 0.0)
    last = 9.0 if kind == DIVERGED else 1.0
    return Symptom(kind, 30, gain, 0.5 if kind == OVERFITS else gain, skill, top, top_class, 0.1, 2.3, last, True)


def verdicts(kind: str | None, cause: str = "", verdict: str | None = None, **top: Any) -> Verdicts:
    v = Verdicts(symptom(kind, **top))
    if verdict is not None:
        v.record(cause, Verification("fix", "held-out score", 0.0, 0.8 if verdict == GONE else 0.0, verdict, 0.8))
    return v


# (cause, signals, symptom kind, verdict of the cause's own fix, named?)
ROWS: list[tuple[str, dict[str, Any], str | None, str | None, bool]] = [
    ("init.nonfinite", {"weight__nonfinite@0.weight": 1}, DIVERGED, GONE, True),
    ("init.nonfinite", {"weight__nonfinite@bn.running_var": 4}, None, None, True),  # seen before any trial
    ("init.nonfinite", {"weight__gain@0": math.nan}, DIVERGED, None, False),  # NaN gain alone: not counted
    ("data.nonfinite", {"input__nonfinite": 3}, None, None, True),
    ("data.nonfinite", {"input__nonfinite": 0, "target__nonfinite": 0}, LEARNS, None, False),
    ("data.low_variability", {"input__duplicate_share": 0.97}, CONSTANT, None, True),
    ("data.low_variability", {"input__duplicate_share": 0.0, "input__variation": 1e-5}, CONSTANT, None, True),
    ("data.low_variability", {"input__duplicate_share": 0.1, "input__variation": math.nan}, CONSTANT, None, False),
    ("data.unshuffled", {"target__batch_entropy": 0.1, "target__shuffled_batch_entropy": 2.2}, COLLAPSED, None, True),
    ("data.unshuffled", {"target__batch_entropy": 2.1, "target__shuffled_batch_entropy": 2.2}, COLLAPSED, None, False),
    ("data.unshuffled", {"target__batch_entropy": 0.0, "target__shuffled_batch_entropy": 0.1}, COLLAPSED, None, False),
    ("data.class_imbalance", {"target__histogram": [95, 5], "target__majority_share": 0.95,
                              "target__classes_present": 2, "task__kind": "binary"}, COLLAPSED, None, True),
    ("data.class_imbalance", {"target__histogram": [95, 5], "target__majority_share": 0.95,
                              "target__classes_present": 2, "task__kind": "binary"}, LEARNS, None, False),
    ("data.class_imbalance", {"target__histogram": [50, 50], "target__majority_share": 0.5,
                              "target__classes_present": 2, "task__kind": "binary"}, COLLAPSED, None, False),
    ("data.class_imbalance", {"target__histogram": [0, 0, 64], "target__majority_share": 1.0,
                              "target__classes_present": 1, "task__kind": "multiclass", "task__num_classes": 3},
     LEARNS, None, True),
    ("data.unnormalized", {"input__first_layer_rms": 140.0}, CONSTANT, None, True),
    ("data.unnormalized", {"input__first_layer_rms": 140.0}, LEARNS, None, False),
    ("data.unnormalized", {"input__first_layer_rms": 140.0}, LEARNS, GONE, True),
    ("data.unnormalized", {"input__first_layer_rms": 1.0}, CONSTANT, None, False),
    ("data.unnormalized", {"input__first_layer_rms": math.nan, "input__rms": math.nan}, CONSTANT, None, False),
    ("data.unnormalized", {"input__first_layer_rms": 500.0}, None, None, True),  # no trial: the scale alone
    ("data.target_scale", {"task__kind": "regression", "target__mean": 3000.0, "target__std": 500.0,
                           "output__between_std": 0.1}, CONSTANT, None, True),
    ("data.target_scale", {"task__kind": "regression", "target__mean": 0.0, "target__std": 1.0,
                           "output__between_std": 0.1}, CONSTANT, None, False),
    ("data.labels_unrelated", {"permutation__real_score": 0.0, "permutation__permuted_score": 0.0,
                               "permutation__fit_gain": 0.6}, OVERFITS, None, True),
    ("data.labels_unrelated", {"permutation__real_score": 0.3, "permutation__permuted_score": 0.0,
                               "permutation__fit_gain": 0.6}, OVERFITS, None, False),
    ("data.labels_unrelated", {"permutation__real_score": 0.04, "permutation__permuted_score": -0.02,
                               "permutation__fit_gain": 0.9}, OVERFITS, None, True),
    ("data.labels_unrelated", {"permutation__real_score": 0.0, "permutation__permuted_score": -math.inf,
                               "permutation__fit_gain": 0.9}, OVERFITS, None, False),
    ("data.labels_unrelated", {"permutation__real_score": 0.0, "permutation__permuted_score": 0.0,
                               "permutation__fit_gain": 0.6, "linear__held_out_gain": 0.5}, OVERFITS, None, False),
    ("init.too_small", {"weight__gain@fc1": 0.05, "weight__gain@fc2": 0.05, "act__std_ratio": 1e-4}, CONSTANT, None,
     True),
    ("init.too_small", {"weight__gain@fc1": 0.05, "act__std_ratio": 1e-4}, LEARNS, None, False),
    ("init.too_small", {"weight__gain@fc1": 0.6, "act__std_ratio": 0.5}, CONSTANT, None, False),
    ("init.too_large", {"weight__gain@fc1": 20.0, "weight__gain@fc2": 20.0}, CONSTANT, None, True),
    ("init.too_large", {"weight__gain@fc1": 1.0, "act__saturated@tanh": 0.97}, CONSTANT, None, True),
    ("init.too_large", {"weight__gain@fc1": 1.0}, CONSTANT, None, False),
    ("init.too_large", {"weight__gain@fc1": 0.6, "act__saturated@tanh": 0.96, "input__first_layer_rms": 266.0},
     COLLAPSED, None, False),  # raw inputs saturate the units: data.unnormalized, not the weights
    ("init.symmetric", {"weight__distinct_rows@fc1": 1, "weight__rows@fc1": 64, "model__head": "fc2"}, CONSTANT,
     None, True),
    ("init.symmetric", {"weight__distinct_rows@fc2": 1, "weight__rows@fc2": 10, "model__head": "fc2"}, CONSTANT,
     None, False),  # a zero head is how many fine-tuning recipes start
    ("init.dead_units", {"act__in_dead@fc2": 1.0}, CONSTANT, None, True),
    ("init.dead_units", {"act__in_dead@fc2": 0.2}, CONSTANT, None, False),
    ("lr.too_high", {"optim__lr": 1.0, "update__ratio_median": 0.5}, DIVERGED, None, True),
    ("lr.too_high", {"optim__lr": 1.0, "update__ratio_median": 0.5}, LEARNS, None, False),
    ("lr.too_high", {"optim__lr": 1e-3, "update__ratio_median": 1e-3}, CONSTANT, None, False),
    ("lr.too_high", {"optim__lr": 1e-3, "update__ratio_median": 1e-3}, CONSTANT, GONE, True),
    ("lr.too_low", {"optim__lr": 1e-7, "optim__class": "Adam", "update__ratio_median": 1e-7}, CONSTANT, None, True),
    ("lr.too_low", {"optim__lr": 1e-3, "optim__class": "Adam", "update__ratio_median": 1e-3}, CONSTANT, None, False),
    ("lr.too_low", {"optim__lr": 1e-7, "optim__class": "Adam", "update__ratio_median": math.nan}, LEARNS, None, False),
    ("loss.double_softmax", {"loss__kind": "cross_entropy", "task__num_classes": 10, "output__op": "softmax"},
     CONSTANT, None, True),
    ("loss.double_softmax", {"loss__kind": "nll", "task__num_classes": 10, "output__op": "log_softmax"}, CONSTANT,
     None, False),
    ("loss.double_softmax", {"loss__kind": "cross_entropy", "task__num_classes": 10, "output__op": "linear"},
     CONSTANT, None, False),
    ("loss.task_mismatch", {"loss__error": "IndexError: Target 10 is out of bounds.", "task__num_classes": 10,
                            "target__min": 1.0, "target__max": 10.0, "loss__kind": "cross_entropy"}, None, None, True),
    ("loss.task_mismatch", {"loss__kind": "bce_logits", "target__values": [0.0, 255.0]}, CONSTANT, None, True),
    ("loss.task_mismatch", {"loss__kind": "unknown", "loss__reads": "probabilities", "target__max": 9.0}, CONSTANT,
     None, True),  # a hand-written binary cross-entropy on class ids
    ("loss.task_mismatch", {"loss__kind": "nll", "output__rows_log_normalized": False}, CONSTANT, None, True),
    ("loss.task_mismatch", {"loss__kind": "bce_logits", "target__values": [0.0, 1.0], "target__max": 1.0}, CONSTANT,
     None, False),
    ("loss.task_mismatch", {"loss__kind": "cross_entropy", "target__values": [0.0, 1.0, 2.0],
                            "task__num_classes": 3}, CONSTANT, None, False),
    ("loss.shape_broadcast", {"loss__broadcasts": True, "loss__kind": "mse"}, CONSTANT, None, True),
    ("loss.shape_broadcast", {"loss__broadcasts": False, "loss__kind": "mse"}, CONSTANT, None, False),
    ("loss.shape_broadcast", {"loss__broadcasts": True, "loss__kind": "unknown", "loss__inner_shape": [32],
                              "loss__broadcast_warning": "Using a target size ..."}, CONSTANT, None, True),
    ("arch.output_activation", {"output__logit_op": "relu", "loss__kind": "cross_entropy"}, COLLAPSED, None, True),
    ("arch.output_activation", {"output__logit_op": "sigmoid", "loss__kind": "bce"}, CONSTANT, None, False),
    ("arch.output_activation", {"output__logit_op": "relu", "loss__kind": "unknown", "task__kind": "binary",
                                "loss__reads": "logits"}, COLLAPSED, None, True),  # a sigmoid applied in the loss
    ("arch.output_activation", {"output__logit_op": "sigmoid", "loss__kind": "unknown", "target__min": 0.0,
                                "target__max": 9.0, "loss__reads": "probabilities"}, COLLAPSED, None, False),
    ("arch.output_activation", {"output__logit_op": "relu", "loss__kind": "mse", "target__min": 0.0,
                                "target__max": 5.0}, CONSTANT, None, False),  # non-negative targets: it fits
    ("arch.output_activation", {"output__logit_op": "relu", "loss__kind": "mse", "target__min": 200.0,
                                "target__max": 800.0, "output__zero_share": 1.0}, CONSTANT, None, True),  # shut
    ("arch.softmax_single_unit", {"output__shape": [64, 1], "output__op": "softmax", "output__between_std": 0.0,
                                  "output__min": 1.0, "output__max": 1.0}, CONSTANT, None, True),
    ("arch.softmax_single_unit", {"output__shape": [64, 2], "output__op": "softmax"}, CONSTANT, None, False),
    ("arch.softmax_single_unit", {"output__shape": [4, 1, 32, 32], "loss__kind": "cross_entropy", "loss__init": 0.0},
     CONSTANT, None, True),  # CrossEntropyLoss on one channel: its own softmax is 1 everywhere
    ("arch.softmax_single_unit", {"output__shape": [4, 2, 32, 32], "loss__kind": "cross_entropy", "loss__init": 0.0},
     CONSTANT, None, False),
    ("arch.output_activation", {"output__logit_op": "linear", "output__op": "softmax", "loss__kind": "unknown",
                                "loss__reads": "probabilities"}, LEARNS, None, False),  # a Linear bounds nothing
    ("arch.batch_mixing", {"batch__mixing": 0.4}, CONSTANT, None, True),
    ("arch.batch_mixing", {"batch__mixing": 0.0}, CONSTANT, None, False),
    ("arch.batch_mixing", {"batch__output_rows": 128, "batch__input_rows": 64}, None, None, True),
    ("optim.not_updating", {"optim__held": [], "optim__foreign": 4, "model__trainable_params": 10}, None, None, True),
    ("optim.not_updating", {"optim__held": ["w"], "model__trainable_params": 0}, None, None, True),
    ("optim.not_updating", {"optim__held": ["fc.weight"], "model__unregistered": ["model.layers[0]"],
                            "model__unregistered_params": 2}, LEARNS, None, True),
    ("optim.not_updating", {"optim__held": ["fc.weight"], "model__trainable_params": 10}, LEARNS, None, False),
    ("optim.over_regularized", {"model__dropout": {"drop": 0.95}}, CONSTANT, None, True),
    ("optim.over_regularized", {"optim__lr": 0.1, "optim__weight_decay": 1.0}, CONSTANT, None, True),
    ("optim.over_regularized", {"model__dropout": {"drop": 0.5}, "optim__weight_decay": 1e-4}, CONSTANT, None, False),
    ("mode.bn_small_batch", {"model__batchnorm": ["bn"], "data__batch_size": 1, "bn__values_per_channel@bn": 1},
     None, None, True),
    ("mode.bn_small_batch", {"model__batchnorm": ["bn"], "data__batch_size": 2, "bn__values_per_channel@bn": 2048},
     LEARNS, None, False),  # two images still give each channel of a conv layer thousands of values
    ("mode.bn_small_batch", {"model__batchnorm": ["bn"], "data__batch_size": 2, "bn__values_per_channel@bn": 2048},
     CONSTANT, None, True),
    ("mode.bn_small_batch", {"model__batchnorm": ["bn"], "data__batch_size": 64}, LEARNS, None, False),
    ("mode.bn_small_batch", {"model__batchnorm": [], "data__batch_size": 1}, CONSTANT, None, False),
]  # fmt: skip


@pytest.mark.parametrize(("cause", "values", "kind", "verdict", "named"), ROWS)
def test_rule_table(cause: str, values: dict[str, Any], kind: str | None, verdict: str | None, named: bool) -> None:
    finding = PRE[cause](signals(**values), T, verdicts(kind, cause, verdict))
    assert (finding is not None) == named, finding
    if finding is not None:
        assert finding.cause == cause and 0 <= finding.confidence <= 1 and finding.summary and finding.fix.advice


def test_every_pre_rule_has_a_row_that_names_it_and_one_that_does_not() -> None:
    named = {cause for cause, *_, yes in ROWS if yes}
    silent = {cause for cause, *_, yes in ROWS if not yes}
    assert set(PRE) <= named, sorted(set(PRE) - named)
    assert set(PRE) - {"data.nonfinite"} <= silent | {"data.nonfinite"}, sorted(set(PRE) - silent)


@pytest.mark.parametrize("cause", sorted(PRE))
def test_no_signals_no_finding(cause: str) -> None:
    assert PRE[cause](Signals(), T, Verdicts()) is None
    assert PRE[cause](Signals(), T, verdicts(CONSTANT)) is None


@pytest.mark.parametrize("cause", sorted(PRE))
def test_nan_signals_do_not_raise(cause: str) -> None:
    keys = ("input__first_layer_rms", "input__rms", "update__ratio_median", "optim__lr", "target__mean",
            "target__std", "loss__init", "act__std_ratio", "batch__mixing")  # fmt: skip
    values = dict.fromkeys(keys, math.nan)
    finding = PRE[cause](signals(**values), T, verdicts(DIVERGED, cause, STAYS))
    assert finding is None or finding.cause == cause


def test_a_fix_that_fails_lowers_a_suspicion_and_one_that_works_raises_it() -> None:
    values = {"input__first_layer_rms": 140.0}
    stayed = PRE["data.unnormalized"](signals(**values), T, verdicts(CONSTANT, "data.unnormalized", STAYS))
    gone = PRE["data.unnormalized"](signals(**values), T, verdicts(CONSTANT, "data.unnormalized", GONE))
    alone = PRE["data.unnormalized"](signals(**values), T, verdicts(CONSTANT))
    assert stayed is not None and gone is not None and alone is not None
    assert stayed.confidence < alone.confidence < gone.confidence
