"""Remedies that live in the data: batch order, batch size, class balance, input and target scale."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SubsetRandomSampler, WeightedRandomSampler

from torchmedic.finding import Finding
from torchmedic.remedies.balance import balance
from torchmedic.repair.draft import Draft, Scale
from torchmedic.repair.lines import module_ref, numbers
from torchmedic.repair.loaders import rebuilt, sampler_kind, why_not_rebuildable
from torchmedic.repair.remedy import Applied, Outcome, Refused, remedy
from torchmedic.repair.workspace import Workspace
from torchmedic.repair.wrappers import StandardizedLoss, innermost_loss, with_innermost

RANDOM_SAMPLERS = (RandomSampler, WeightedRandomSampler, SubsetRandomSampler)
LARGER_BATCH = 32  # BatchNorm statistics over 32 samples are stable; the usual default batch size
GROUPS = 8  # GroupNorm groups (or fewer when they do not divide the channels): the usual choice for small CNNs


@remedy("data.unshuffled", stage="data")
def shuffle(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """A loader that reshuffles every epoch."""
    loader = draft.loader
    why = why_not_rebuildable(loader)
    if why is not None:
        return Refused(why + "; shuffle the samples where they are read")
    assert isinstance(loader, DataLoader)
    kind = sampler_kind(loader)
    if isinstance(loader.sampler, RANDOM_SAMPLERS):
        return Refused(f"the loader already draws at random ({kind}): its batches hold few classes because of what "
                       "it draws (see data.class_imbalance), not because of the order", needless=True)  # fmt: skip
    if kind != "sequential":
        return Refused(f"the loader draws with a {kind}: make sure it draws the classes in random order")
    new = rebuilt(loader, shuffle=True)
    return Applied(
        draft.but(loader=new, train=ws.batches_from(new)),
        "loader rebuilt with shuffle=True (it read the samples in stored order)",
        f"loader = DataLoader(train_set, batch_size={loader.batch_size}, shuffle=True)  # train_set: your Dataset",
    )


@remedy("mode.bn_small_batch", stage="data", options=2)
def stable_normalization(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """Batches large enough for BatchNorm statistics; or, as the alternative, GroupNorm instead of BatchNorm."""
    loader = draft.loader
    if option == 0 and why_not_rebuildable(loader) is None:
        assert isinstance(loader, DataLoader)
        new = rebuilt(loader, batch_size=max(LARGER_BATCH, int(loader.batch_size or 0)))
        return Applied(
            draft.but(loader=new, train=ws.batches_from(new)),
            f"loader rebuilt with batch_size={new.batch_size} (was {loader.batch_size})",
            f"loader = DataLoader(train_set, batch_size={new.batch_size}, shuffle=True)  # BatchNorm needs 16+",
        )
    swapped = _group_norms(draft.inner)
    if not swapped:
        return Refused("no BatchNorm module to replace, and the loader cannot be rebuilt")
    return Applied(
        draft,
        f"BatchNorm replaced with GroupNorm, which normalizes each sample on its own, in {len(swapped)} layer"
        f"{'s' if len(swapped) > 1 else ''} ({', '.join(module_ref(n) for n in swapped[:3])}"
        f"{', ...' if len(swapped) > 3 else ''})",
        "def to_group_norm(module):  # GroupNorm does not depend on the batch\n"
        "    for name, child in module.named_children():\n"
        "        if isinstance(child, nn.modules.batchnorm._BatchNorm):\n"
        f"            setattr(module, name, nn.GroupNorm(math.gcd({GROUPS}, child.num_features), "
        "child.num_features))\n"
        "        else:\n"
        "            to_group_norm(child)\n"
        "to_group_norm(model)  # before building the optimizer",
    )


def _group_norms(model: nn.Module) -> list[str]:
    """Replace every BatchNorm with a GroupNorm carrying its affine weights, in place; return the names."""
    swapped = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.modules.batchnorm._BatchNorm):
            continue
        channels = module.num_features
        norm = nn.GroupNorm(math.gcd(GROUPS, channels), channels, eps=module.eps, affine=module.affine)
        if module.affine and module.weight is not None and module.bias is not None:
            with torch.no_grad():
                norm.weight.copy_(module.weight)
                norm.bias.copy_(module.bias)
        model.set_submodule(name, norm.to(module.weight.device if module.weight is not None else "cpu"))
        swapped.append(name)
    return swapped


@remedy("data.class_imbalance", stage="loss", options=2)
def balanced_classes(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """Class weights in the loss (inverse frequency of the labels the batches hold); or a class-balanced sampler,
    first when the user's loader already draws with a WeightedRandomSampler (then that sampler is the bug)."""
    labels = torch.cat([b.targets.flatten().cpu() for b in ws.ctx.audit if b.targets is not None])
    present = int(torch.unique(labels).numel())
    if present < 2:
        return Refused(
            f"every label read is class {int(labels[0])}: no weighting can teach classes the data does not hold"
        )
    loss = innermost_loss(draft.loss_fn)
    own_sampler = isinstance(getattr(draft.loader, "sampler", None), WeightedRandomSampler)  # meant to balance
    if isinstance(loss, (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss)) and option == int(own_sampler):
        return _weighted_loss(draft, loss, labels.round().long() if labels.is_floating_point() else labels.long(), ws)
    return _balanced_sampler(ws, draft)


def _weighted_loss(draft: Draft, loss: nn.Module, labels: torch.Tensor, ws: Workspace) -> Outcome:
    counts = torch.bincount(labels.clamp_min(0))
    weighted = copy.deepcopy(loss)
    device = ws.ctx.device
    if isinstance(weighted, nn.BCEWithLogitsLoss):
        if len(counts) != 2:
            return Refused(f"BCEWithLogitsLoss on {len(counts)} label values: no single pos_weight balances them")
        pos_weight = float(counts[0]) / max(1.0, float(counts[1]))
        weighted.pos_weight = torch.tensor([pos_weight], device=device)
        what, code = f"pos_weight={pos_weight:.3g} in BCEWithLogitsLoss", f"pos_weight=torch.tensor([{pos_weight:.4g}])"
    else:
        weights = balance(labels, num_classes=ws.ctx.task.num_classes).class_weights.to(device)
        weighted.weight = weights
        text = numbers(weights.tolist(), limit=12) or "counts.sum() / (len(counts) * counts.clamp_min(1))"
        what, code = f"class weights {text} in {type(loss).__name__}", f"weight=torch.tensor({text})"
    return Applied(
        draft.but(loss_fn=with_innermost(draft.loss_fn, weighted)),
        f"{what} (inverse frequency of the {len(labels)} labels read: {counts.tolist()})",
        f"loss_fn = nn.{type(loss).__name__}({code})  # every class gets the same say",
    )


def _balanced_sampler(ws: Workspace, draft: Draft) -> Outcome:
    loader = draft.loader
    why = why_not_rebuildable(loader)
    if why is not None:
        return Refused(why + ", and the loss is not a torch loss that takes class weights")
    assert isinstance(loader, DataLoader)
    sampler = balance(loader, num_classes=ws.ctx.task.num_classes, seed=ws.config.seed).sampler
    new = rebuilt(loader, sampler=sampler)
    return Applied(
        draft.but(loader=new, train=ws.batches_from(new)),
        f"loader rebuilt with a class-balanced WeightedRandomSampler (was a {sampler_kind(loader)})",
        "sampler = torchmedic.balance(train_set).sampler  # draws every class equally often\n"
        f"loader = DataLoader(train_set, batch_size={loader.batch_size}, sampler=sampler)",
    )


@remedy("data.unnormalized", stage="data")
def standardize_inputs(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """The model fed inputs standardized with the per-channel mean and std of the samples read."""
    s = ws.signals
    means, stds = s.get("input.channel_mean"), s.get("input.channel_std")
    if not means or not stds or not all(math.isfinite(v) for v in [*means, *stds]):
        return Refused("the per-channel input statistics are missing or not finite (see data.nonfinite)")
    x = ws.ctx.train[0].first_input
    shape = [1, len(means)] + [1] * (x.dim() - 2) if x.dim() >= 2 else [len(means)]
    mean = torch.tensor(means, dtype=torch.float32, device=ws.ctx.device).reshape(shape)
    std = torch.tensor(stds, dtype=torch.float32, device=ws.ctx.device).reshape(shape)
    shown_mean, shown_std = numbers(means, limit=4), numbers(stds, limit=4)
    if x.dim() == 4 and shown_mean:
        code = (
            f"transform = transforms.Normalize(mean={shown_mean}, std={shown_std})  # on the tensors you feed now\n"
            f"# or per batch: x = (x - torch.tensor({shown_mean}).view(1, -1, 1, 1)) / "
            f"torch.tensor({shown_std}).view(1, -1, 1, 1)"
        )
    else:
        dims = "dim=0" if x.dim() <= 2 else f"dim={tuple(d for d in range(x.dim()) if d != 1)}"
        code = (
            f"mean, std = x_train.mean({dims}), x_train.std({dims})  # per {'feature' if x.dim() <= 2 else 'channel'}"
            ", from the training inputs\n"
            "x = (x - mean) / std  # in the Dataset or before model(x): for training and prediction alike"
        )
    return Applied(
        draft.but(inputs=Scale(mean, std)),
        f"inputs standardized inside the model: (x - mean) / std over {len(means)} channels "
        f"(means {numbers(means, limit=4) or 'per channel'}, stds {numbers(stds, limit=4) or 'per channel'})",
        code,
    )


@remedy("data.target_scale", stage="data")
def standardize_targets(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """The loss on standardized targets, the model's output mapped back to the targets' units."""
    mean, std = ws.signals.get("target.mean"), ws.signals.get("target.std")
    if mean is None or not std or not math.isfinite(mean) or not math.isfinite(std):
        return Refused("the target mean and std are missing or not finite (see data.nonfinite)")
    if not isinstance(ws.ctx.outputs, torch.Tensor):
        return Refused(f"the model returns a {type(ws.ctx.outputs).__name__}: scale its prediction by hand")
    return Applied(
        draft.but(outputs=Scale(mean, std), loss_fn=StandardizedLoss(draft.loss_fn, mean, std)),
        f"loss computed on standardized targets (y - {mean:.4g}) / {std:.4g}; the model's output is mapped back "
        f"(output * {std:.4g} + {mean:.4g}), so its predictions stay in your units",
        f"y_mean, y_std = {mean:.6g}, {std:.6g}  # of the training targets\n"
        "loss = loss_fn(model(x), (y - y_mean) / y_std)  # train on standardized targets\n"
        "prediction = model(x) * y_std + y_mean  # and undo it for predictions",
    )
