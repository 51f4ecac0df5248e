"""Live rules for the model's output layer: an activation that restricts it, a softmax over one unit."""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.finding import Evidence, format_value
from torchmedic.rules.live.common import MECHANISM_LIVE, SEEN_LIVE, number
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

RAW = "return self.fc(x)  # no activation on the output layer"
ZEROING = frozenset({"ReLU", "ReLU6", "Hardtanh", "Threshold", "Softplus"})  # final modules whose output can be 0


@rule("arch.output_activation", seen_by="live")
def output_activation(s: Signals, t: Thresholds) -> Claim | None:
    """An activation after the last layer bounds the output: ReLU zeroes logits (and their gradient), a sigmoid
    or tanh pins the output below targets it cannot reach."""
    low, high, zeros = number(s, N.OUTPUT_MIN), number(s, N.OUTPUT_MAX), number(s, N.OUTPUT_ZERO_FRACTION)
    if low is None or high is None or zeros is None:
        return None
    kind, units = s.get(N.TARGET_KIND), s.get(N.OUTPUT_UNITS, 0)
    evidence = [Evidence("output range", [low, high], "unbounded (logits take both signs)")]
    if kind == "index" and units >= 2:
        if (number(s, N.OUTPUT_ROW_SUM_DEV) or 1.0) <= t.max_row_sum_dev:
            return None  # probabilities: loss.double_softmax
        if low == 0 and zeros >= t.min_zero_logits and _may_clamp_at_zero(s):
            return _finding(
                f"{zeros:.0%} of the logits are exactly 0: {_zeroing(s)} zeroes them and their gradient, so those "
                "classes can never win.",
                evidence + [Evidence("share of logits exactly 0", zeros, "~0"), *_final_evidence(s)],
            )
        if low >= 0 and high <= 1:
            return _finding(
                "every logit lies in [0, 1]: a sigmoid (or clamp) on the output layer leaves the "
                "softmax almost uniform.",
                evidence,
            )
        return None
    if kind != "float" or s.get(N.TARGET_BINARY_FRACTION) == 1.0:
        return None
    negative, above = number(s, N.TARGET_NEGATIVE_FRACTION) or 0, number(s, N.TARGET_ABOVE_ONE_FRACTION) or 0
    if low == 0 and zeros >= t.min_zero_logits and negative >= t.min_unreachable and _may_clamp_at_zero(s):
        return _finding(
            f"the outputs are never negative ({zeros:.0%} exactly 0) while {negative:.0%} of the targets "
            f"are: {_zeroing(s)} clamps them at 0.",
            evidence + [Evidence("targets below the output's range", negative, "0"), *_final_evidence(s)],
        )
    if 1 - t.bound_margin <= high <= 1 and above >= t.min_unreachable:
        return _finding(
            f"the outputs sit at 1 and never above ({format_value(high)}) while {above:.0%} of the "
            "targets are above 1: a sigmoid, tanh or clamp on the output layer.",
            evidence + [Evidence("targets above the output's range", above, "0")],
        )
    return None


def _may_clamp_at_zero(s: Signals) -> bool:
    """Outputs clamped at exactly 0 come from a zeroing layer, or from an op in forward the monitor cannot see; a
    final module of another kind (a Softmax whose probabilities underflow, a Linear) rules the claim out."""
    final = s.get(N.OUTPUT_FINAL_MODULE)
    return final is None or final == "" or final in ZEROING


def _zeroing(s: Signals) -> str:
    """The mechanism as it was seen: the final module by name, or what the output's values show."""
    final = s.get(N.OUTPUT_FINAL_MODULE)
    if final:
        return f"the {final} that produces the model's output"
    return "an op after the last layer (a relu or clamp in forward)"


def _final_evidence(s: Signals) -> list[Evidence]:
    final = s.get(N.OUTPUT_FINAL_MODULE)
    if final is None:
        return []
    return [Evidence("layer that returns the output", final or "an op in forward", "a Linear or Conv (raw scores)")]


def _finding(summary: str, evidence: list[Evidence]) -> Claim:
    return Claim(
        MECHANISM_LIVE,
        summary,
        evidence,
        "Remove the activation after the last layer (the loss takes raw outputs).",
        RAW,
    )


@rule("arch.softmax_single_unit", seen_by="live")
def softmax_single_unit(s: Signals, t: Thresholds) -> Claim | None:
    """Softmax over one unit is exp(x)/exp(x) = 1 for every input, and its gradient is 0."""
    low, high = number(s, N.OUTPUT_MIN), number(s, N.OUTPUT_MAX)
    if s.get(N.OUTPUT_UNITS) != 1 or low is None or low != high or low != 1.0:
        return None
    return Claim(
        SEEN_LIVE,
        "the output is exactly 1.0 for every sample: a softmax over a single output unit (softmax normalizes "
        "over the units, and one unit always gets probability 1). No gradient passes through it.",
        [
            Evidence("output value range", [low, high], "varies across samples"),
            Evidence("gradient norm", s.get(N.GRAD_NORM), "> 0"),
        ],
        "For one output unit use a sigmoid (or BCEWithLogitsLoss on the raw output).",
        "loss_fn = nn.BCEWithLogitsLoss()\nloss = loss_fn(model(x).squeeze(-1), y.float())",
    )
