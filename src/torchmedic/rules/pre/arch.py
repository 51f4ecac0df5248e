"""Rules for the architecture: an activation squashing the logits, softmax over one unit, samples mixed."""

from __future__ import annotations

from torchmedic.config import DiagnoseConfig
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.rules.pre.common import confirm, fmt, module_ref, rows_reshaped, symptom_evidence, verification
from torchmedic.rules.registry import rule
from torchmedic.signals import Signals
from torchmedic.task import SOFTMAX_LOSSES

BOUNDED = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0),
    "relu6": (0.0, 6.0),
    "hardsigmoid": (0.0, 1.0),
}
ONE_SIDED = {"relu", "softplus", "abs", "exp", "square", "elu", "selu", "celu", "gelu", "silu"}
CLAMPS = {"clamp", "clip", "clamp_min", "clamp_max"}


def _restricts(op: str, s: Signals) -> str | None:
    """Why the final activation `op` keeps the loss from its optimum, or None if it suits the loss."""
    kind = s.get("loss.kind")
    lo, hi = s.get("target.min"), s.get("target.max")
    out_lo, out_hi = s.get("output.min"), s.get("output.max")
    if kind in SOFTMAX_LOSSES or kind == "nll" or kind == "bce_logits":
        if op in BOUNDED:
            a, b = BOUNDED[op]
            return f"logits confined to [{a:g}, {b:g}] cannot express confident predictions"
        if op in ONE_SIDED or op in CLAMPS:
            return "logits clipped at zero: negative scores are impossible and their gradient is zero"
        return None
    if kind == "bce":
        return None if op in ("sigmoid", "hardsigmoid") else f"{op} does not map to probabilities in [0, 1]"
    if lo is None or hi is None:
        return None
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
def output_activation(s: Signals, c: DiagnoseConfig) -> Finding | None:
    op = s.get("output.logit_op")
    single_softmax = (s.get("output.shape") or [0, 0])[-1:] == [1] and s.get("output.op") == "softmax"
    if not op or single_softmax:
        return None
    reason = _restricts(op, s)
    if reason is None:
        return None
    scope = s.get("output.logit_op_scope", "")
    check = verification(s, "arch.output_activation", c)
    zero = s.get("output.zero_share", 0.0)
    where = module_ref(scope) if scope else "the end of forward"
    return Finding(
        "arch.output_activation",
        confirm(0.8, check, structural=True),
        f"{op} at {where} restricts the output: {reason} "
        f"(output range [{fmt(s.get('output.min'))}, {fmt(s.get('output.max'))}]"
        f"{f', {zero:.0%} exactly 0' if zero > 0.05 else ''}).",
        [
            Evidence("last activation before the loss", op, "none (raw scores)", scope),
            Evidence("output range", [s.get("output.min"), s.get("output.max")], "unbounded"),
            Evidence("share of outputs exactly 0", zero, "~0"),
            *symptom_evidence(s, c),
        ],
        Fix(
            f"Remove the {op} after the last layer: the loss needs raw, unbounded scores "
            "(CrossEntropyLoss/BCEWithLogitsLoss apply their own softmax/sigmoid).",
            f"{module_ref(scope)} = nn.Identity()  # was {op}" if scope else f"# in forward: return x, not {op}(x)",
        ),
        check,
    )


@rule("arch.softmax_single_unit")
def softmax_single_unit(s: Signals, c: DiagnoseConfig) -> Finding | None:
    shape = s.get("output.shape") or []
    op = s.get("output.op")
    single = len(shape) >= 2 and shape[1] == 1
    constant = s.get("output.between_std", 1.0) == 0.0 and s.get("output.min") == s.get("output.max")
    if not (single and op in ("softmax", "log_softmax") and constant):
        return None
    value = s.get("output.min")
    scope = s.get("output.op_scope", "")
    return Finding(
        "arch.softmax_single_unit",
        0.96,
        f"{op} over a single output unit ({shape}) always gives {fmt(value)}: the output is constant and every "
        "gradient is exactly zero.",
        [Evidence("output width", 1, ">= 2 for softmax"), Evidence("output value for every sample", value, "varies")],
        Fix(
            "For two classes use one logit with a sigmoid loss, or two logits with softmax.",
            (f"{module_ref(scope)} = nn.Identity()  # drop the softmax\n" if scope else "")
            + "loss_fn = nn.BCEWithLogitsLoss()  # on the raw logit, with float 0/1 targets",
        ),
    )


@rule("arch.batch_mixing")
def batch_mixing(s: Signals, c: DiagnoseConfig) -> Finding | None:
    rows = rows_reshaped(s)
    if rows is not None:
        raises = f", and the loss raises: {str(s.get('loss.error')).rstrip('.')}" if s.get("loss.error") else ""
        return Finding(
            "arch.batch_mixing",
            0.88,
            f"the model returns {rows[0]} rows for a batch of {rows[1]} samples: a view/reshape with a fixed size "
            "(e.g. x.view(-1, K) with the wrong K) spreads the features of each sample over other rows"
            f"{raises}.",
            [
                Evidence("output rows", rows[0], f"{rows[1]} (one per sample)"),
                Evidence("output shape", s.get("output.shape"), ""),
            ],
            Fix(
                "Flatten per sample, keeping the batch dimension.",
                "x = torch.flatten(x, 1)  # or x.view(x.size(0), -1), not x.view(-1, K)",
            ),
        )
    change = s.get("batch.mixing")
    if change is None or change < 1e-3:
        return None
    dims = s.get("model.softmax_dims") or []
    how = (
        "a softmax runs over dim=0, the batch"
        if 0 in dims
        else "a view/reshape mixes samples (use permute or transpose to reorder dimensions)"
    )
    return Finding(
        "arch.batch_mixing",
        0.92,
        f"in eval mode, changing one sample changes the outputs of the others by up to {change:.1%} of their size: "
        f"{how}; each prediction depends on its batch-mates.",
        [
            Evidence("largest change of other samples' outputs (relative)", change, "0"),
            Evidence("softmax dims in forward", dims, "1 (classes), never 0"),
        ],
        Fix(
            "Never mix the batch dimension: reorder axes with permute/transpose, not view, and normalize over "
            "classes (dim=1).",
            "x = x.permute(1, 0, 2)  # (N, T, F) -> (T, N, F), not x.view(T, N, F)\n"
            "probabilities = logits.softmax(dim=1)",
        ),
    )
