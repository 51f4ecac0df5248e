"""The cause codes of docs/causes.md: a public contract, so a code never changes meaning."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    code: str
    title: str
    seen_by: frozenset[str]  # "pre" (diagnose) and/or "live" (the training monitor)


def _cause(code: str, title: str, seen_by: str) -> Cause:
    return Cause(code, title, frozenset(seen_by.split(",")))


CAUSES: dict[str, Cause] = {
    c.code: c
    for c in (
        _cause("init.too_small", "weights too small for the depth: the signal shrinks layer by layer", "pre,live"),
        _cause("init.too_large", "weights too large: activations or logits explode or saturate", "pre,live"),
        _cause("init.symmetric", "zero or constant weights: units of a layer stay identical", "pre,live"),
        _cause("init.dead_units", "ReLU units dead from the start", "pre,live"),
        _cause("init.nonfinite", "a weight or buffer holds NaN or Inf before training", "pre,live"),
        _cause("init.pretrained_not_loaded", "pretrained weights silently not loaded", "live"),
        _cause("lr.too_high", "learning rate too high: steps overshoot, diverge or kill units", "pre,live"),
        _cause("lr.too_low", "learning rate too low to leave the initial solution", "pre,live"),
        _cause("lr.schedule_collapse", "the schedule drives the learning rate to ~0 early", "live"),
        _cause("data.unnormalized", "inputs not standardized", "pre,live"),
        _cause("data.target_scale", "regression targets far from the scale the output reaches", "pre,live"),
        _cause("data.class_imbalance", "one class dominates the targets", "pre,live"),
        _cause("data.labels_unrelated", "targets carry no signal learnable from the inputs", "pre"),
        _cause("data.low_variability", "inputs (nearly) identical across samples", "pre,live"),
        _cause("data.unshuffled", "samples ordered by class: each batch holds one or few classes", "pre,live"),
        _cause("data.nonfinite", "NaN or Inf in inputs or targets", "pre,live"),
        _cause("data.train_infer_mismatch", "preprocessing at inference differs from training", "live"),
        _cause("loss.double_softmax", "the model applies softmax and the loss applies it again", "pre,live"),
        _cause("loss.task_mismatch", "the loss does not fit the targets", "pre,live"),
        _cause("loss.shape_broadcast", "output and target shapes differ and the loss broadcasts", "pre,live"),
        _cause("arch.output_activation", "an activation on the logits restricts the output", "pre,live"),
        _cause("arch.softmax_single_unit", "softmax over a 1-unit output", "pre,live"),
        _cause("arch.batch_mixing", "the output for one sample depends on other samples", "pre"),
        _cause("optim.not_updating", "parameters never change", "pre,live"),
        _cause("optim.missing_zero_grad", "gradients accumulate across steps", "live"),
        _cause("optim.over_regularized", "weight decay or dropout so strong the output collapses", "pre,live"),
        _cause("mode.eval_during_training", "the model is in eval mode while it trains", "live"),
        _cause("mode.bn_small_batch", "BatchNorm trained with batch size 1-2", "pre,live"),
    )
}


def pre_causes() -> list[str]:
    """Codes that `diagnose()` can see from the model, loader, loss and optimizer alone."""
    return [code for code, c in CAUSES.items() if "pre" in c.seen_by]


def live_causes() -> list[str]:
    """Codes that the training monitor can see in the user's own loop."""
    return [code for code, c in CAUSES.items() if "live" in c.seen_by]
