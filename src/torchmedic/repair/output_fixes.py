"""Remedies at the end of forward: a final softmax or activation removed, a sigmoid loss for a single logit."""

from __future__ import annotations

from torch import nn

from torchmedic.clone import clone_model
from torchmedic.finding import Finding
from torchmedic.remedies.nonlinearity import ACTIVATION_MODULES
from torchmedic.repair.draft import Draft
from torchmedic.repair.lines import module_ref
from torchmedic.repair.remedy import Applied, Outcome, Refused, remedy
from torchmedic.repair.workspace import Workspace
from torchmedic.repair.wrappers import innermost_loss, with_innermost
from torchmedic.task import loss_kind_by_name
from torchmedic.tracing import trace_forward

# Modules whose whole forward is one op: removing the op is replacing the module with nn.Identity().
SINGLE_OP: dict[type[nn.Module], str] = {
    **ACTIVATION_MODULES,
    nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax",
    nn.Softmin: "softmin",
}


def _calls(ws: Workspace, model: nn.Module, scope: str) -> int:
    """How many ops run inside module `scope` in one forward pass (a shared activation module runs several)."""
    copy = clone_model(model).eval()
    trace, _ = trace_forward(copy, ws.ctx.train[0])
    return sum(op.scope == scope for op in trace.ops)


def without_op(ws: Workspace, draft: Draft, name: str, ordinal: int, scope: str) -> Outcome:
    """Remove the `ordinal`-th call of op `name` from forward: swap its module for nn.Identity() when the module
    does nothing else, else skip the op with WithoutOp around the model."""
    inner = draft.inner
    try:
        module = inner.get_submodule(scope) if scope else None
    except AttributeError:
        module = None
    if module is not None and SINGLE_OP.get(type(module)) == name and _calls(ws, inner, scope) == 1:
        inner.set_submodule(scope, nn.Identity())
        return Applied(
            draft,
            f"{module_ref(scope)} ({module!r}) replaced with nn.Identity()",
            f"{module_ref(scope)} = nn.Identity()  # was {module!r}",
        )
    if any(skipped == name for skipped, _ in draft.skipped_ops):
        return Refused(f"a {name} call is already skipped: remove this one in forward by hand")
    owner = type(module if module is not None else inner).__name__
    return Applied(
        draft.but(skipped_ops=(*draft.skipped_ops, (name, ordinal))),
        f"the final {name} in {owner}.forward skipped (call {ordinal + 1} of {name} in one forward pass)",
        f"# in {owner}.forward: return the raw scores, without the final {name}(...)",
    )


def _op(ws: Workspace, prefix: str) -> tuple[str, int, str] | None:
    s = ws.signals
    name, ordinal = s.get(f"{prefix}"), s.get(f"{prefix}_ordinal")
    return None if name is None or ordinal is None else (name, int(ordinal), s.get(f"{prefix}_scope", ""))


@remedy("loss.double_softmax", stage="loss")
def drop_final_softmax(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """Raw logits out of forward: the loss applies log_softmax itself."""
    op = _op(ws, "output.op")
    if op is None:
        return Refused("the trace did not find the softmax that makes the output")
    outcome = without_op(ws, draft, *op)
    if isinstance(outcome, Applied):
        code = outcome.code + "\nprobabilities = model(x).softmax(dim=1)  # only where you need probabilities"
        return Applied(outcome.draft, outcome.what, code)
    return outcome


@remedy("arch.output_activation", stage="loss")
def drop_output_activation(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """Unbounded scores out of forward: the activation on the logits (or regression output) removed."""
    op = _op(ws, "output.logit_op")
    if op is None:
        return Refused("the trace did not find the activation on the output")
    return without_op(ws, draft, *op)


@remedy("arch.softmax_single_unit", stage="loss")
def single_logit(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """One raw logit with a sigmoid loss: the softmax over one unit removed, BCELoss made BCEWithLogitsLoss."""
    op = _op(ws, "output.op")
    loss = innermost_loss(draft.loss_fn)
    kind = loss_kind_by_name(loss)
    if op is None or kind not in ("bce", "bce_logits"):
        return Refused(
            f"the loss is {kind or type(loss).__name__}, not a binary cross-entropy: change the head by hand"
        )
    outcome = without_op(ws, draft, *op)
    if not isinstance(outcome, Applied) or kind == "bce_logits":
        return outcome
    weight = getattr(loss, "weight", None)
    logits_loss = nn.BCEWithLogitsLoss(weight=weight, reduction=getattr(loss, "reduction", "mean"))
    return Applied(
        outcome.draft.but(loss_fn=with_innermost(outcome.draft.loss_fn, logits_loss)),
        outcome.what + "; BCELoss -> BCEWithLogitsLoss on the raw logit",
        outcome.code + "\nloss_fn = nn.BCEWithLogitsLoss()  # applies the sigmoid itself, stably\n"
        "prediction = torch.sigmoid(model(x)) > 0.5",
    )
