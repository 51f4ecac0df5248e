"""Rules for the architecture: an activation squashing the logits, softmax over one unit, samples mixed."""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.lines import module_ref
from torchmedic.rules.pre.common import SEEN, confirm, fmt, rows_reshaped, symptom_evidence
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.task import SOFTMAX_LOSSES
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

BOUNDED = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0),
    "relu6": (0.0, 6.0),
    "hardsigmoid": (0.0, 1.0),
}
ONE_SIDED = {"relu", "softplus", "abs", "exp", "square", "elu", "selu", "celu", "gelu", "silu"}
CLAMPS = {"clamp", "clip", "clamp_min", "clamp_max"}
SIMPLEX = {"softmax", "log_softmax"}  # rows that sum to one (in log space for log_softmax)
PROBABILITY_MAPS = {"sigmoid", "hardsigmoid", "softmax"}  # what a loss on probabilities can read
OUTPUT_ACTIVATION = 0.8  # the activation is seen in the trace and the loss it cannot serve is known
RESHAPED_ROWS = 0.88  # the model returns a multiple of the batch's rows: a fixed-size view spreads samples
MIXING = 0.92  # changing one sample moved the others' outputs in eval mode: measured directly


def _reads_logits(s: Signals) -> bool:
    """The loss reads the output as logits: a softmax loss, BCE with logits, or a binary task whose loss costs
    ln 2 at an output of 0 (a sigmoid applied inside the loss)."""
    kind = s.get(N.LOSS_KIND)
    if kind in SOFTMAX_LOSSES or kind in ("nll", "bce_logits"):
        return True
    return s.get(N.LOSS_READS) == "logits"


def labels_per_row(s: Signals) -> float:
    """How many labels are on in a target row, on average, for multi-label 0/1 targets (0 for other tasks)."""
    if s.get(N.TASK_KIND) != "multilabel":
        return 0.0
    return float(sum(s.get(N.TARGET_POSITIVE_SHARE) or []))


def _restricts(op: str, s: Signals) -> str | None:
    """Why the final activation `op` keeps the loss from its optimum, or None if it suits the loss (or bounds
    nothing: a Linear layer's output is what the loss reads)."""
    if op not in BOUNDED and op not in ONE_SIDED and op not in CLAMPS and op not in SIMPLEX:
        return None
    labels = labels_per_row(s)
    if op in SIMPLEX and labels > 1:
        return (
            f"each row of probabilities sums to 1, so at most one label can pass 0.5, while a target row has "
            f"{labels:.1f} labels on on average: the labels compete instead of each being a yes/no of its own"
        )
    kind = s.get(N.LOSS_KIND)
    lo, hi = s.get(N.TARGET_MIN), s.get(N.TARGET_MAX)
    out_lo, out_hi = s.get(N.OUTPUT_MIN), s.get(N.OUTPUT_MAX)
    if _reads_logits(s):
        if op in BOUNDED:
            a, b = BOUNDED[op]
            return f"logits confined to [{a:g}, {b:g}] cannot express confident predictions"
        if op in ONE_SIDED or op in CLAMPS:
            return "logits clipped at zero: negative scores are impossible and their gradient is zero"
        return None
    if op in ONE_SIDED and s.get(N.OUTPUT_ZERO_SHARE, 0.0) >= 1.0:
        return f"every output is exactly 0: the {op} is shut for every sample, so no gradient passes it"
    if kind == "bce" or s.get(N.LOSS_READS) == "probabilities":
        return None if op in PROBABILITY_MAPS else f"{op} does not map to probabilities in [0, 1]"
    if lo is None or hi is None:
        return None
    if op in SIMPLEX:
        return (
            f"outputs confined to a probability simplex (each row sums to 1) while targets span [{fmt(lo)}, {fmt(hi)}]"
        )
    if op in BOUNDED:
        a, b = BOUNDED[op]
        if lo < a - 1e-6 or hi > b + 1e-6:
            return f"outputs confined to [{a:g}, {b:g}] while targets span [{fmt(lo)}, {fmt(hi)}]"
    elif op in ONE_SIDED and lo < 0:
        return f"outputs are >= 0 while targets go down to {fmt(lo)}"
    elif op in CLAMPS and out_lo is not None and out_hi is not None and (lo < out_lo - 1e-6 or hi > out_hi + 1e-6):
        return f"outputs clamped to [{fmt(out_lo)}, {fmt(out_hi)}] while targets span [{fmt(lo)}, {fmt(hi)}]"
    return None


@rule("arch.output_activation")
def output_activation(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """An activation after the last layer bounds what the loss can reach: a ReLU on logits makes negative scores
    impossible (and passes no gradient below 0), a sigmoid or tanh caps confidence, a clamp or a one-sided
    activation keeps a regression output from the targets' range."""
    op = s.get(N.OUTPUT_LOGIT_OP)
    single_softmax = (s.get(N.OUTPUT_SHAPE) or [0, 0])[-1:] == [1] and s.get(N.OUTPUT_OP) == "softmax"
    if single_softmax:
        return None
    scope = s.get(N.OUTPUT_LOGIT_OP_SCOPE, "")
    if s.get(N.OUTPUT_OP) in SIMPLEX and (s.get(N.TASK_KIND) == "regression" or labels_per_row(s) > 1):
        op, scope = s.get(N.OUTPUT_OP), s.get(N.OUTPUT_OP_SCOPE, "")  # values, or several labels, on a simplex
    if not op:
        return None
    reason = _restricts(op, s)
    if reason is None:
        return None
    check = v.get("arch.output_activation")
    zero = s.get(N.OUTPUT_ZERO_SHARE, 0.0)
    where = module_ref(scope) if scope else "the end of forward"
    return Claim(
        confirm(OUTPUT_ACTIVATION, check, structural=True),
        f"{op} at {where} restricts the output: {reason} "
        f"(output range [{fmt(s.get(N.OUTPUT_MIN))}, {fmt(s.get(N.OUTPUT_MAX))}]"
        f"{f', {zero:.0%} exactly 0' if zero > 0.05 else ''}).",
        [
            Evidence("last activation before the loss", op, "none (raw scores)", scope),
            Evidence("output range", [s.get(N.OUTPUT_MIN), s.get(N.OUTPUT_MAX)], "unbounded"),
            Evidence("share of outputs exactly 0", zero, "~0"),
            *symptom_evidence(v, t),
        ],
        "Give each label its own sigmoid: remove the softmax and train with BCEWithLogitsLoss on float 0/1 targets."
        if op in SIMPLEX and labels_per_row(s) > 1
        else f"Remove the {op} after the last layer: the loss needs raw, unbounded scores "
        "(CrossEntropyLoss/BCEWithLogitsLoss apply their own softmax/sigmoid).",
        verification=check,
    )


@rule("arch.softmax_single_unit")
def softmax_single_unit(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Softmax over a single unit is identically 1: the output is constant and every gradient exactly zero. The
    same holds for a softmax loss (CrossEntropyLoss) on one output channel: its log_softmax is 0 everywhere."""
    shape = s.get(N.OUTPUT_SHAPE) or []
    op = s.get(N.OUTPUT_OP)
    single = len(shape) >= 2 and shape[1] == 1
    constant = s.get(N.OUTPUT_BETWEEN_STD, 1.0) == 0.0 and s.get(N.OUTPUT_MIN) == s.get(N.OUTPUT_MAX)
    zero_loss = s.get(N.LOSS_KIND) in SOFTMAX_LOSSES and abs(s.get(N.LOSS_INIT, 1.0)) <= 1e-7
    if single and zero_loss:
        return Claim(
            SEEN,
            f"{s.get(N.LOSS_KIND)} over a single output channel ({shape}): its softmax is 1 for every sample and "
            "position, so the loss is 0 from the first step and every gradient is exactly zero.",
            [Evidence("output channels", 1, ">= 2 for a softmax loss"), Evidence("loss at init", 0.0, "> 0")],
            "Give the last layer one output per class (2 for object vs background), or use one logit with "
            "BCEWithLogitsLoss and float 0/1 targets.",
        )
    if not (single and op in ("softmax", "log_softmax") and constant):
        return None
    value = s.get(N.OUTPUT_MIN)
    return Claim(
        SEEN,
        f"{op} over a single output unit ({shape}) always gives {fmt(value)}: the output is constant and every "
        "gradient is exactly zero.",
        [Evidence("output width", 1, ">= 2 for softmax"), Evidence("output value for every sample", value, "varies")],
        "For two classes use one logit with a sigmoid loss, or two logits with softmax.",
    )


@rule("arch.batch_mixing")
def batch_mixing(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """A view/reshape across the batch dimension, or a softmax over it, makes each output depend on the other
    samples of the batch: in eval mode, changing one sample moves the outputs of the others."""
    rows = rows_reshaped(s)
    if rows is not None:
        raises = f", and the loss raises: {str(s.get(N.LOSS_ERROR)).rstrip('.')}" if s.get(N.LOSS_ERROR) else ""
        return Claim(
            RESHAPED_ROWS,
            f"the model returns {rows[0]} rows for a batch of {rows[1]} samples: a view/reshape with a fixed size "
            "(e.g. x.view(-1, K) with the wrong K) spreads the features of each sample over other rows"
            f"{raises}.",
            [
                Evidence("output rows", rows[0], f"{rows[1]} (one per sample)"),
                Evidence("output shape", s.get(N.OUTPUT_SHAPE), ""),
            ],
            "Flatten per sample, keeping the batch dimension: torch.flatten(x, 1) or x.view(x.size(0), -1), not "
            "x.view(-1, K).",
        )
    change = s.get(N.BATCH_MIXING)
    if change is None or change < t.min_batch_mixing:
        return None
    dims = s.get(N.MODEL_SOFTMAX_DIMS) or []
    how = (
        "a softmax runs over dim=0, the batch"
        if 0 in dims
        else "a view/reshape mixes samples (use permute or transpose to reorder dimensions)"
    )
    return Claim(
        MIXING,
        f"in eval mode, changing one sample or reversing their order changes the outputs of the others by up to "
        f"{change:.1%} of their size: "
        f"{how}; each prediction depends on its batch-mates.",
        [
            Evidence("largest change of other samples' outputs (relative)", change, "0"),
            Evidence("softmax dims in forward", dims, "1 (classes), never 0"),
        ],
        "Never mix the batch dimension: reorder axes with permute/transpose, not view, and normalize over "
        "classes (dim=1).",
    )
