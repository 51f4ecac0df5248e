"""Fixes at the end of forward: a final softmax or activation removed, a sigmoid loss for a single logit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from torchmedic import signal_names as N
from torchmedic.clone import clone_model
from torchmedic.fixes.registry import Applied, Outcome, Refused, fix
from torchmedic.lines import module_ref
from torchmedic.remedies.nonlinearity import ACTIVATION_MODULES
from torchmedic.rules.pre.arch import SIMPLEX, labels_per_row
from torchmedic.setup import Setup
from torchmedic.task import loss_kind_by_name
from torchmedic.tracing import trace_forward
from torchmedic.wrappers import FloatTargets, MatchedTargets, innermost_loss, with_innermost

if TYPE_CHECKING:
    from torchmedic.context import Context

RESTRICTING = frozenset(
    {"relu", "relu6", "sigmoid", "tanh", "hardtanh", "hardsigmoid", "softplus", "abs", "exp", "square", "elu",
     "selu", "celu", "gelu", "silu", "clamp", "clip", "clamp_min", "clamp_max"}
)  # fmt: skip
PROBABILITIES = frozenset({"sigmoid", "hardsigmoid"})  # what a loss on probabilities (BCELoss) needs at the end
# Modules whose whole forward is one op: removing the op is replacing the module with nn.Identity().
SINGLE_OP: dict[type[nn.Module], str] = {
    **ACTIVATION_MODULES,
    nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax",
    nn.Softmin: "softmin",
}


def _calls(ctx: Context, model: nn.Module, scope: str) -> int:
    """How many ops run inside module `scope` in one forward pass (a shared activation module runs several)."""
    copy = clone_model(model).eval()
    trace, _ = trace_forward(copy, ctx.train[0])
    return sum(op.scope == scope for op in trace.ops)


def without_op(ctx: Context, setup: Setup, name: str, ordinal: int, scope: str) -> Outcome:
    """Remove the `ordinal`-th call of op `name` from forward: swap its module for nn.Identity() when the module
    does nothing else, else skip the op with WithoutOp around the model."""
    inner = setup.inner
    try:
        module = inner.get_submodule(scope) if scope else None
    except AttributeError:
        module = None
    if module is not None and SINGLE_OP.get(type(module)) == name and _calls(ctx, inner, scope) == 1:
        inner.set_submodule(scope, nn.Identity())
        return Applied(
            setup,
            f"{module_ref(scope)} ({module!r}) replaced with nn.Identity()",
            f"{module_ref(scope)} = nn.Identity()  # was {module!r}",
        )
    if any(skipped == name for skipped, _ in setup.skipped_ops):
        return Refused(f"a {name} call is already skipped: remove this one in forward by hand")
    owner = type(module if module is not None else inner).__name__
    return Applied(
        setup.but(skipped_ops=(*setup.skipped_ops, (name, ordinal))),
        f"the final {name} in {owner}.forward skipped (call {ordinal + 1} of {name} in one forward pass)",
        f"# in {owner}.forward: return the raw scores, without the final {name}(...)",
    )


FINAL_OP = (N.OUTPUT_OP, N.OUTPUT_OP_ORDINAL, N.OUTPUT_OP_SCOPE)  # the last op of forward
LOGIT_OP = (N.OUTPUT_LOGIT_OP, N.OUTPUT_LOGIT_OP_ORDINAL, N.OUTPUT_LOGIT_OP_SCOPE)  # the last activation on the logits


def _op(ctx: Context, names: tuple[N.Name, N.Name, N.Name]) -> tuple[str, int, str] | None:
    s = ctx.signals
    name, ordinal = s.get(names[0]), s.get(names[1])
    return None if name is None or ordinal is None else (name, int(ordinal), s.get(names[2], ""))


@fix("loss.double_softmax", stage="loss")
def drop_final_softmax(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Raw logits out of forward: the loss applies log_softmax itself."""
    op = _op(ctx, FINAL_OP)
    if op is None or op[0] not in ("softmax", "log_softmax"):
        return Refused("forward does not end with a softmax")
    if ctx.task.loss_kind == "nll":
        return Refused("NLLLoss needs the log_softmax at the end of forward", needless=True)
    outcome = without_op(ctx, setup, *op)
    if isinstance(outcome, Applied):
        code = outcome.code + "\nprobabilities = model(x).softmax(dim=1)  # only where you need probabilities"
        return Applied(outcome.setup, outcome.what, code)
    return outcome


@fix("arch.output_activation", stage="loss")
def drop_output_activation(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Unbounded scores out of forward: the activation on the logits (or regression output) removed."""
    final = _op(ctx, FINAL_OP)
    if ctx.task.kind == "regression" and final is not None and final[0] in ("softmax", "log_softmax"):
        return without_op(ctx, setup, *final)  # a softmax on values
    if final is not None and final[0] in SIMPLEX and labels_per_row(ctx.signals) > 1:
        return logits_loss_head(ctx, setup, final)
    op = _op(ctx, LOGIT_OP)
    if op is None or op[0] not in RESTRICTING:
        return Refused("forward does not end with an activation that bounds the output")
    if op[0] in PROBABILITIES and ctx.task.threshold == 0.5 and ctx.task.kind in ("binary", "multilabel"):
        return Refused(f"the loss reads the output of {op[0]} as a probability: it needs it", needless=True)
    outcome = without_op(ctx, setup, *op)
    if op == final and isinstance(outcome, Applied) and loss_kind_by_name(innermost_loss(setup.loss_fn)) == "bce":
        return on_logits(outcome)  # nothing bounds the output any more: BCELoss would refuse it
    return outcome


@fix("arch.softmax_single_unit", stage="loss")
def single_logit(ctx: Context, setup: Setup, option: int) -> Outcome:
    """One raw logit with a sigmoid loss: the softmax over one unit removed, BCELoss made BCEWithLogitsLoss. A
    softmax loss on 0/1 targets (categorical cross-entropy over one unit is 0 whatever the output) becomes
    BCEWithLogitsLoss too."""
    op = _op(ctx, FINAL_OP)
    loss = innermost_loss(setup.loss_fn)
    kind = loss_kind_by_name(loss)
    if op is not None and op[0] in SIMPLEX and kind not in ("bce", "bce_logits") and ctx.task.kind == "binary":
        return logits_loss_head(ctx, setup, op)
    if op is None or kind not in ("bce", "bce_logits"):
        return Refused(
            f"the loss is {kind or type(loss).__name__}, not a binary cross-entropy: change the head by hand",
            code="loss_fn = nn.BCEWithLogitsLoss()  # one raw logit, float 0/1 targets\n"
            "# or: two outputs with softmax and nn.CrossEntropyLoss() on class indices",
        )
    outcome = without_op(ctx, setup, *op)
    if not isinstance(outcome, Applied) or kind == "bce_logits":
        return outcome
    return on_logits(outcome)


def logits_loss_head(ctx: Context, setup: Setup, final: tuple[str, int, str]) -> Outcome:
    """Each output a yes/no of its own: the final softmax removed and the loss made BCEWithLogitsLoss, which applies
    one sigmoid per output (multi-hot targets cannot be reached by rows that sum to 1, nor 0/1 targets by a softmax
    over one unit)."""
    outcome = without_op(ctx, setup, *final)
    if not isinstance(outcome, Applied):
        return outcome
    loss = MatchedTargets(FloatTargets(nn.BCEWithLogitsLoss()))  # `[N]` labels for an `[N, 1]` logit too
    return Applied(
        outcome.setup.but(loss_fn=with_innermost(outcome.setup.loss_fn, loss)),
        outcome.what + f"; the loss made BCEWithLogitsLoss (a sigmoid on each output), was {_loss_name(setup)}",
        outcome.code + "\nloss_fn = nn.BCEWithLogitsLoss()  # float 0/1 targets shaped like the output\n"
        "predicted = torch.sigmoid(model(x)) > 0.5",
    )


def _loss_name(setup: Setup) -> str:
    loss = innermost_loss(setup.loss_fn)
    return getattr(loss, "__name__", type(loss).__name__)


def on_logits(outcome: Applied) -> Applied:
    """`outcome` with its BCELoss made BCEWithLogitsLoss (same weight and reduction): the model's output is a raw
    logit now, which the loss turns into a probability itself."""
    loss = innermost_loss(outcome.setup.loss_fn)
    weight = getattr(loss, "weight", None)
    logits_loss = nn.BCEWithLogitsLoss(weight=weight, reduction=getattr(loss, "reduction", "mean"))
    return Applied(
        outcome.setup.but(loss_fn=with_innermost(outcome.setup.loss_fn, logits_loss)),
        outcome.what + "; BCELoss -> BCEWithLogitsLoss on the raw logit",
        outcome.code + "\nloss_fn = nn.BCEWithLogitsLoss()  # applies the sigmoid itself, stably\n"
        "prediction = torch.sigmoid(model(x)) > 0.5",
    )
