"""Remedies for a loss that does not fit the targets: class labels fed to the wrong loss or head, shapes that
broadcast."""

from __future__ import annotations

import torch
from torch import nn

from torchmedic.finding import Finding
from torchmedic.probes.data_audit import MAX_CLASSES
from torchmedic.repair.draft import Draft
from torchmedic.repair.lines import module_ref
from torchmedic.repair.remedy import Applied, Outcome, Refused, remedy
from torchmedic.repair.workspace import Workspace
from torchmedic.repair.wrappers import IndexTargets, MatchedTargets, innermost_loss
from torchmedic.task import CLASS_LOSSES, loss_kind_by_name


def _wider_head(ws: Workspace, draft: Draft, classes: int) -> tuple[str, str] | str:
    """Replace the final Linear layer with one that has `classes` outputs; (what, code), or why it cannot."""
    head = ws.signals.get("model.head")
    layer = draft.inner.get_submodule(head) if head else None
    if not isinstance(layer, nn.Linear):
        return f"the final layer ({type(layer).__name__ if layer is not None else 'not found'}) is not an nn.Linear"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ws.config.seed)
        wider = nn.Linear(layer.in_features, classes, bias=layer.bias is not None)
    draft.inner.set_submodule(head, wider.to(device=layer.weight.device, dtype=layer.weight.dtype))
    ref = module_ref(head)
    return (
        f"{ref} replaced with nn.Linear({layer.in_features}, {classes}) (had {layer.out_features} outputs)",
        f"{ref} = nn.Linear({layer.in_features}, {classes})  # one output per class index 0..{classes - 1}",
    )


def _class_labels(ws: Workspace) -> torch.Tensor | None:
    """The labels read, when they are class indices: one integer >= 0 per sample, at most MAX_CLASSES of them."""
    targets = [b.targets for b in ws.ctx.audit if b.targets is not None]
    if not targets:
        return None
    labels = torch.cat([t.detach().flatten().cpu() for t in targets])
    if labels.is_floating_point():
        if not bool(torch.isfinite(labels).all()) or not bool((labels == labels.round()).all()):
            return None
        labels = labels.long()
    per_sample = labels.numel() == sum(int(t.shape[0]) for t in targets if t.dim() > 0)
    if not per_sample or labels.numel() == 0 or int(labels.min()) < 0 or int(labels.max()) >= MAX_CLASSES:
        return None
    return labels


@remedy("loss.task_mismatch", stage="loss")
def class_loss(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """Class labels trained as classes: one output per class index, and cross-entropy on long indices."""
    s = ws.signals
    labels, shape = _class_labels(ws), s.get("output.shape") or []
    if labels is None or len(shape) != 2:
        error = s.get("loss.error")
        return Refused("the targets are not class indices" + (f" and the loss raises: {error}" if error else ""))
    low, high = int(labels.min()), int(labels.max())
    classes, width = high + 1, int(shape[1])
    kind = loss_kind_by_name(innermost_loss(draft.loss_fn)) or s.get("loss.kind")
    whats, codes = [], []
    if width < classes:
        head = _wider_head(ws, draft, classes)
        if isinstance(head, str):
            return Refused(f"labels go up to {high} but the model has {width} outputs, and {head}")
        whats.append(head[0])
        note = f"  # labels run {low}..{high}: or keep {width} outputs and train on y - 1" if low == 1 else ""
        codes.append(head[1] + note)
    loss = draft.loss_fn
    if kind not in CLASS_LOSSES:
        indices = s.get("target.dtype", "").startswith("int") and len(s.get("target.shape") or []) == 1
        loss = nn.CrossEntropyLoss() if indices else IndexTargets(nn.CrossEntropyLoss())
        whats.append(f"{kind} loss replaced with CrossEntropyLoss" + ("" if indices else " on long class indices"))
        codes.append("loss_fn = nn.CrossEntropyLoss()")
        if not indices:
            codes.append("loss = loss_fn(model(x), y.long().reshape(-1))  # class indices, shape [N]")
    if not whats:
        return Refused(f"the labels ({low}..{high}) fit the {width} outputs and the {kind} loss")
    return Applied(draft.but(loss_fn=loss), "; ".join(whats), "\n".join(codes))


@remedy("loss.shape_broadcast", stage="loss")
def matching_shapes(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """Targets reshaped to the output's shape before the loss, so nothing broadcasts to [N, N]."""
    out, target = ws.signals.get("output.shape"), ws.signals.get("target.shape")
    return Applied(
        draft.but(loss_fn=MatchedTargets(draft.loss_fn)),
        f"targets reshaped to the output's shape inside the loss ({target} -> {out})",
        "loss = loss_fn(out, y.view_as(out))  # same shape: no broadcasting to [N, N]",
    )
