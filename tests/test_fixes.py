"""The fix registry: one fix per pre-flight cause, the code a finding shows is the code its fix writes, and each
fix that can be applied makes its sick setup learn where the setup as given does not."""

from __future__ import annotations

import math

import pytest
import torch

import torchmedic
from torchmedic.batch import BatchKeys
from torchmedic.causes import pre_causes
from torchmedic.config import DiagnoseConfig
from torchmedic.context import build
from torchmedic.doctor import examine
from torchmedic.fixes import FIXES, Applied, Refused, apply
from torchmedic.symptom import read_symptom
from torchmedic.trial import run_trial
from torchmedic.wrappers import innermost_loss

from setups import PATIENT_BUDGET_S, Setup, adam, digits, loader, mlp, sick

APPLIED = sorted(c for c in FIXES if not FIXES[c].by_hand)


def test_every_pre_cause_has_exactly_one_fix() -> None:
    assert set(pre_causes()) <= set(FIXES), sorted(set(pre_causes()) - set(FIXES))
    assert {c for r in FIXES.values() for c in r.causes} == set(FIXES)


def test_registering_a_second_fix_for_a_cause_fails() -> None:
    with pytest.raises(ValueError, match="already registered"):
        torchmedic.fixes.fix("lr.too_high", stage="lr")(lambda ctx, setup, option: Refused("no"))


def _context(cause: str):
    """The copies and measurements diagnose() makes of the setup broken by `cause`, the fixes' input."""
    setup = sick(cause)
    ctx = build(setup.model, setup.loader, setup.loss_fn, setup.optimizer, None, 60.0, BatchKeys(), DiagnoseConfig())
    examine(ctx)
    return ctx


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize("cause", APPLIED)
def test_the_fix_makes_its_sick_setup_learn(cause: str) -> None:
    """Applied to a copy of the setup broken by `cause`, the fix turns a symptom into learning (judged on held-out
    samples, from the predictions), and leaves the setup it was given unchanged."""
    ctx = _context(cause)
    t, steps = ctx.config.thresholds, 150
    original = ctx.setup()
    weights = [p.detach().clone() for p in original.inner.parameters()]
    outcome = next((o for o in (apply(ctx, cause, original, k) for k in range(FIXES[cause].options))
                    if isinstance(o, Applied)), None)  # fmt: skip
    assert outcome is not None and outcome.code, f"the fix of {cause} refused on its own sick setup"
    assert all(torch.equal(a, b) for a, b in zip(weights, original.inner.parameters(), strict=True))
    fixed = read_symptom(run_trial(outcome.setup, steps, ctx.task), ctx.task, t)
    assert not fixed.present, (cause, fixed)
    if ctx.untrainable is None:
        before = read_symptom(run_trial(original, steps, ctx.task), ctx.task, t)
        assert before.present or before.score + t.verify_margin <= fixed.score or not math.isfinite(before.score)


@pytest.mark.parametrize("cause", sorted(c for c in FIXES if FIXES[c].by_hand))
def test_a_by_hand_fix_refuses_with_the_lines_to_change(cause: str) -> None:
    ctx = _context(cause)
    outcome = apply(ctx, cause, ctx.setup())
    assert isinstance(outcome, Refused) and outcome.reason and outcome.code


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize("cause", ["loss.double_softmax", "data.unnormalized", "lr.too_low", "data.nonfinite"])
def test_a_findings_code_is_its_fixs_code(cause: str) -> None:
    setup = sick(cause)
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer, budget_s=PATIENT_BUDGET_S)
    finding = next(f for f in report.findings if f.cause == cause)
    ctx = _context(cause)
    outcome = apply(ctx, cause, ctx.setup())
    assert finding.fix.code and finding.fix.code == outcome.code


class HardSigmoidHead(torch.nn.Module):
    """An MLP for one binary output ending in a hand-written hard sigmoid: flat, zero-gradient beyond |x| = 2.5."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp(classes=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (0.2 * self.body(x) + 0.5).clamp(0.0, 1.0)


def test_removing_a_final_clamp_under_bceloss_feeds_the_logit_to_bcewithlogitsloss() -> None:
    """Without the clamp the output leaves [0, 1], which BCELoss refuses: the fix swaps the loss too, and the
    trial reads the fixed setup's predictions at the logit's threshold, 0."""
    x, y = digits()
    model = HardSigmoidHead()
    setup = Setup(model, loader(x, (y < 5).float().unsqueeze(1)), torch.nn.BCELoss(), adam(model))
    ctx = build(setup.model, setup.loader, setup.loss_fn, setup.optimizer, None, 60.0, BatchKeys(), DiagnoseConfig())
    examine(ctx)
    outcome = apply(ctx, "arch.output_activation", ctx.setup())
    assert isinstance(outcome, Applied) and "BCEWithLogitsLoss" in outcome.code
    assert isinstance(innermost_loss(outcome.setup.loss_fn), torch.nn.BCEWithLogitsLoss)
    assert isinstance(ctx.setup().loss_fn, torch.nn.BCELoss)
    task = ctx.task.read_by("bce_logits")
    assert (ctx.task.threshold, task.threshold) == (0.5, 0.0)
    fixed = read_symptom(ctx.trial(outcome.setup, "fixed", steps=60), task, ctx.config.thresholds)
    assert not fixed.present, fixed


def digit_properties() -> tuple[torch.Tensor, torch.Tensor]:
    """Digits with four 0/1 labels each (even, >= 5, has a loop, prime): 1.8 labels on per row on average."""
    x, y = digits()
    labels = [y % 2 == 0, y >= 5, torch.isin(y, torch.tensor([0, 6, 8, 9])), torch.isin(y, torch.tensor([2, 3, 5, 7]))]
    return x, torch.stack(labels, dim=1).float()


def keras_categorical_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-sum(y log p) on probabilities, as a Keras user writes categorical cross-entropy by hand."""
    return -(y * p.clamp_min(1e-7).log()).sum(dim=1).mean()


@pytest.mark.parametrize("loss_fn", [torch.nn.BCELoss(), keras_categorical_crossentropy], ids=["bce", "keras_cce"])
def test_a_softmax_over_multi_hot_labels_is_replaced_by_one_sigmoid_per_label(loss_fn) -> None:
    """Rows that sum to 1 let at most one label pass 0.5: the doctor names the softmax, and its fix (softmax
    removed, BCEWithLogitsLoss) is verified by a trial on a copy; the same net with sigmoids is not flagged."""
    x, y = digit_properties()
    model = mlp(torch.nn.Softmax(dim=1), classes=4)
    report = torchmedic.diagnose(model, loader(x, y), loss_fn, adam(model), budget_s=60)
    first = report.findings[0]
    assert first.cause == "arch.output_activation", report
    assert first.verification is not None and first.verification.verdict == "gone", report
    assert "BCEWithLogitsLoss" in first.fix.code and "labels compete" in first.summary
    assert isinstance(model[-1], torch.nn.Softmax)  # the user's model is untouched

    healthy = mlp(torch.nn.Sigmoid(), classes=4)
    report = torchmedic.diagnose(healthy, loader(x, y), torch.nn.BCELoss(), adam(healthy), budget_s=60)
    assert "arch.output_activation" not in report.causes, report


def test_a_softmax_over_one_unit_under_categorical_crossentropy_becomes_one_logit_with_bce() -> None:
    """-sum(y log p) over one softmax unit is 0 whatever the model does: the fix removes the softmax and trains
    BCEWithLogitsLoss on the float targets, and the fixed trial learns."""
    x, y = digits()
    model = mlp(torch.nn.Softmax(dim=1), classes=1)
    setup = Setup(model, loader(x, (y < 5).float().unsqueeze(1)), keras_categorical_crossentropy, adam(model))
    ctx = build(setup.model, setup.loader, setup.loss_fn, setup.optimizer, None, 60.0, BatchKeys(), DiagnoseConfig())
    examine(ctx)
    outcome = apply(ctx, "arch.softmax_single_unit", ctx.setup())
    assert isinstance(outcome, Applied) and "BCEWithLogitsLoss" in outcome.code, outcome
    assert isinstance(innermost_loss(outcome.setup.loss_fn), torch.nn.BCEWithLogitsLoss)
    task = ctx.task.read_by("bce_logits")
    fixed = read_symptom(ctx.trial(outcome.setup, "fixed", steps=60), task, ctx.config.thresholds)
    assert not fixed.present, fixed


class OneChannelSegmenter(torch.nn.Module):
    """A segmentation head with one output channel under CrossEntropyLoss: its softmax is 1 everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_class_weights_are_refused_for_fewer_outputs_than_label_values() -> None:
    """Labels 0/1 over one output channel (background ignored, as in the SegNet thread): a weight per class needs
    two outputs, so the class-weight fix refuses with the reason instead of returning a loss that raises."""
    x = torch.randn(64, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    model = OneChannelSegmenter()
    setup = Setup(model, loader(x, 1 - (x[:, 0] > 1.0).long()), torch.nn.CrossEntropyLoss(ignore_index=1), adam(model))
    ctx = build(setup.model, setup.loader, setup.loss_fn, setup.optimizer, None, 60.0, BatchKeys(), DiagnoseConfig())
    outcome = apply(ctx, "data.class_imbalance", ctx.setup())
    assert isinstance(outcome, Refused) and "1 output channel(s)" in outcome.reason


def test_a_rebuilt_loader_that_only_draws_held_out_samples_still_gives_training_batches() -> None:
    """A fix's new loader (a sampler with replacement over a tiny set) whose every batch holds a held-out sample:
    the setup trains on those batches instead of on none (a pilot on no batch raised IndexError)."""
    x, y = digits()
    model = mlp()
    ctx = build(model, loader(x[:256], y[:256], batch_size=2), torch.nn.CrossEntropyLoss(), adam(model), None, 60.0,
                BatchKeys(), DiagnoseConfig())  # fmt: skip
    ctx.train_batches = 8
    held = ctx.held_out.to("cpu")
    batches = ctx.batches_from(loader(held.first_input, held.targets, batch_size=2))
    assert len(batches) == 8 and all(b.size == 2 for b in batches)
