"""Fixes that live in the data: batch order, batch size, class balance, input and target scale.

A fix that needs other batches rebuilds the user's DataLoader when it can (and reads its batches); when it cannot,
it reorders the samples already read, so the trial still tells whether the change helps, and marks the change as
one the user must make by hand.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SubsetRandomSampler, WeightedRandomSampler

from torchmedic import signal_names as N
from torchmedic.batch import concat
from torchmedic.fixes.registry import Applied, Outcome, Refused, fix
from torchmedic.lines import module_ref, numbers
from torchmedic.loaders import rebuilt, sampler_kind, why_not_rebuildable
from torchmedic.remedies.balance import balance
from torchmedic.setup import Scale, Setup
from torchmedic.wrappers import StandardizedLoss, innermost_loss, with_innermost

if TYPE_CHECKING:
    from torchmedic.context import Context

RANDOM_SAMPLERS = (RandomSampler, WeightedRandomSampler, SubsetRandomSampler)
LARGER_BATCH = 32  # BatchNorm statistics over 32 samples are stable; the usual default batch size
GROUPS = 8  # GroupNorm groups (or fewer when they do not divide the channels): the usual choice for small CNNs
WEIGHTED_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss)
STANDARD_MEAN = 0.5  # inputs whose channels already have |mean| <= 0.5 and std in [0.5, 2] are standardized:
STANDARD_STD = (0.5, 2.0)  # standardizing them again changes nothing worth a trial
BALANCED = 1.5  # class weights within 1.5x of each other change the loss too little to matter
MAX_POS_WEIGHT = 100.0  # a label positive once in a thousand is weighted like one in a hundred: more is all noise


CONSTANT_STD = 1e-6  # a channel that never varies (a blank border pixel) stays what it is whatever the scaling


def standardized(means: list[float], stds: list[float]) -> bool:
    """Every channel that varies already has about zero mean and unit spread."""
    low, high = STANDARD_STD
    varying = [(m, d) for m, d in zip(means, stds, strict=True) if d > CONSTANT_STD]
    return all(abs(m) <= STANDARD_MEAN and low <= d <= high for m, d in varying)


def _resampled(ctx: Context, setup: Setup, order: torch.Tensor, why: str, what: str, code: str) -> Outcome:
    """Training batches drawn from the samples read, in `order`: what a fixed loader would give, for a trial; the
    user must make the change (`why` the loader cannot be rebuilt, `code` how)."""
    try:
        everything = concat(ctx.audit)
    except (RuntimeError, TypeError):
        return Refused(f"{why}, and the batches read cannot be joined to reorder them")
    size = max(2, min(ctx.train[0].size, ctx.config.max_trial_batch))
    count = min(len(order) // size, ctx.train_batches)
    batches = tuple(everything.select(order[i * size : (i + 1) * size]).to(ctx.device) for i in range(count))
    if not batches:
        return Refused(f"{why}, and too few samples were read to make batches of {size}")
    return Applied(setup.but(train=batches, by_hand=(*setup.by_hand, what)), what, code)


@fix("data.unshuffled", stage="data")
def shuffle(ctx: Context, setup: Setup, option: int) -> Outcome:
    """A loader that reshuffles every epoch."""
    loader = setup.loader
    code = "loader = DataLoader(train_set, batch_size=..., shuffle=True)  # train_set: your Dataset"
    why = why_not_rebuildable(loader)
    if why is None:
        assert isinstance(loader, DataLoader)
        kind = sampler_kind(loader)
        if isinstance(loader.sampler, RANDOM_SAMPLERS):
            reason = f"the loader already draws at random ({kind}): its batches hold few classes because of what it "
            return Refused(reason + "draws (see data.class_imbalance), not because of the order", needless=True)
        if kind != "sequential":
            return Refused(f"the loader draws with a {kind}: make sure it draws the classes in random order", code=code)
        new = rebuilt(loader, shuffle=True)
        return Applied(
            setup.but(loader=new, train=ctx.batches_from(new)),
            "loader rebuilt with shuffle=True (it read the samples in stored order)",
            f"loader = DataLoader(train_set, batch_size={loader.batch_size}, shuffle=True)  # train_set: your Dataset",
        )
    order = torch.randperm(sum(b.size for b in ctx.audit), generator=ctx.generator())
    return _resampled(ctx, setup, order, why, "batches drawn in random order", code)


@fix("mode.bn_small_batch", stage="data", options=2)
def stable_normalization(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Batches large enough for BatchNorm statistics; or, as the alternative, GroupNorm instead of BatchNorm."""
    loader = setup.loader
    why = why_not_rebuildable(loader)
    if option == 0 and why is None:
        assert isinstance(loader, DataLoader)
        new = rebuilt(loader, batch_size=max(LARGER_BATCH, int(loader.batch_size or 0)))
        return Applied(
            setup.but(loader=new, train=ctx.batches_from(new)),
            f"loader rebuilt with batch_size={new.batch_size} (was {loader.batch_size})",
            f"loader = DataLoader(train_set, batch_size={new.batch_size}, shuffle=True)  # BatchNorm needs 16+",
        )
    swapped = _group_norms(setup.inner)
    if not swapped:
        return Refused("no BatchNorm module to replace" + (f", and {why}" if why else ""))
    return Applied(
        setup,
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


def _labels_read(ctx: Context) -> torch.Tensor | None:
    targets = [b.targets.flatten().cpu() for b in ctx.audit if b.targets is not None]
    if not targets:
        return None
    labels = torch.cat(targets)
    if labels.is_floating_point():
        if not bool(torch.isfinite(labels).all()):
            return None
        labels = labels.round()
    return labels.long()


@fix("data.class_imbalance", stage="loss", options=2)
def balanced_classes(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Class weights in the loss (inverse frequency of the labels read); or a class-balanced sampler, first when
    the user's loader already draws with a WeightedRandomSampler (then that sampler is the bug)."""
    if ctx.task.kind == "multilabel":
        return _positive_weights(ctx, setup)
    if ctx.task.kind not in ("multiclass", "binary"):
        return Refused(f"the task is {ctx.task.kind}: its targets are not classes to balance", needless=True)
    labels = _labels_read(ctx)
    if labels is None or int(labels.min()) < 0:
        return Refused("the targets read are not class indices")
    present = int(torch.unique(labels).numel())
    if present < 2:
        return Refused(
            f"every label read is class {int(labels[0])}: no weighting can teach classes the data does not hold",
            code="print(torch.bincount(torch.as_tensor(train_set.targets)))  # which filter or mapping left one class?",
        )
    counts = torch.bincount(labels).float()
    counts = counts[counts > 0]
    if float(counts.max() / counts.min()) <= BALANCED:
        return Refused(f"the classes are balanced already (counts {counts.long().tolist()[:10]})", needless=True)
    loss = innermost_loss(setup.loss_fn)
    own_sampler = isinstance(getattr(setup.loader, "sampler", None), WeightedRandomSampler)  # meant to balance
    if isinstance(loss, WEIGHTED_LOSSES) and option == int(own_sampler):
        return _weighted_loss(ctx, setup, loss, labels)
    return _balanced_sampler(ctx, setup, labels)


def _positive_weights(ctx: Context, setup: Setup) -> Outcome:
    """BCEWithLogitsLoss with a pos_weight per label: negatives / positives of the targets read."""
    loss = innermost_loss(setup.loss_fn)
    if not isinstance(loss, nn.BCEWithLogitsLoss):
        return Refused(f"the loss is {type(loss).__name__}, not BCEWithLogitsLoss: weight the positives by hand")
    try:
        y = torch.cat([b.targets.reshape(b.size, -1).float().cpu() for b in ctx.audit if b.targets is not None])
    except RuntimeError:
        return Refused("the multi-label targets read do not share one shape")
    positives = (y > 0.5).float().sum(0)
    weights = ((len(y) - positives) / positives.clamp_min(1)).clamp(1.0, MAX_POS_WEIGHT)
    if float(weights.max()) <= BALANCED:
        return Refused("every label is positive often enough already", needless=True)
    weighted = copy.deepcopy(loss)
    weighted.pos_weight = weights.to(ctx.device)
    text = numbers(weights.tolist(), limit=12)
    value = f"torch.tensor({text})" if text else "(len(y_train) - y_train.sum(0)) / y_train.sum(0).clamp_min(1)"
    return Applied(
        setup.but(loss_fn=with_innermost(setup.loss_fn, weighted)),
        f"pos_weight {text or 'per label'} in BCEWithLogitsLoss (negatives / positives of each label)",
        f"loss_fn = nn.BCEWithLogitsLoss(pos_weight={value})  # rare positives get their say",
    )


def _weighted_loss(ctx: Context, setup: Setup, loss: nn.Module, labels: torch.Tensor) -> Outcome:
    counts = torch.bincount(labels)
    weighted = copy.deepcopy(loss)
    if isinstance(weighted, nn.BCEWithLogitsLoss):
        if len(counts) != 2:
            return Refused(f"BCEWithLogitsLoss on {len(counts)} label values: no single pos_weight balances them")
        pos_weight = float(counts[0]) / max(1.0, float(counts[1]))
        weighted.pos_weight = torch.tensor([pos_weight], device=ctx.device)
        what, code = f"pos_weight={pos_weight:.3g} in BCEWithLogitsLoss", f"pos_weight=torch.tensor([{pos_weight:.4g}])"
    else:
        classes = ctx.task.num_classes
        if classes is not None and classes < len(counts):
            return Refused(
                f"the labels take {len(counts)} values but the model has {classes} output channel(s): a weight per "
                "class needs one output per class first"
            )
        weights = balance(labels, num_classes=classes).class_weights.to(ctx.device)
        weighted.weight = weights
        text = numbers(weights.tolist(), limit=12) or "counts.sum() / (len(counts) * counts.clamp_min(1))"
        what, code = f"class weights {text} in {type(loss).__name__}", f"weight=torch.tensor({text})"
    return Applied(
        setup.but(loss_fn=with_innermost(setup.loss_fn, weighted)),
        f"{what} (inverse frequency of the {len(labels)} labels read: {counts.tolist()})",
        f"loss_fn = nn.{type(loss).__name__}({code})  # every class gets the same say",
    )


def _balanced_sampler(ctx: Context, setup: Setup, labels: torch.Tensor) -> Outcome:
    loader = setup.loader
    code = (
        "sampler = torchmedic.balance(train_set).sampler  # draws every class equally often\n"
        f"loader = DataLoader(train_set, batch_size={getattr(loader, 'batch_size', None) or '...'}, sampler=sampler)"
    )
    why = why_not_rebuildable(loader)
    if why is None:
        assert isinstance(loader, DataLoader)
        classes = ctx.task.num_classes if ctx.task.num_classes and ctx.task.num_classes > int(labels.max()) else None
        try:
            sampler = balance(loader, num_classes=classes, seed=ctx.config.seed).sampler
        except Exception as exc:  # a dataset whose labels cannot be read per item
            return Refused(f"the dataset's labels could not be read to weight its samples ({exc})", code=code)
        new = rebuilt(loader, sampler=sampler)
        return Applied(
            setup.but(loader=new, train=ctx.batches_from(new)),
            f"loader rebuilt with a class-balanced WeightedRandomSampler (was a {sampler_kind(loader)})",
            code,
        )
    per_sample = labels.numel() == sum(b.size for b in ctx.audit)
    if not per_sample:
        return Refused(why + ", and the labels are not one class per sample", code=code)
    weights = (1.0 / torch.bincount(labels).float().clamp_min(1))[labels]
    total = ctx.train[0].size * ctx.train_batches
    order = torch.multinomial(weights, total, replacement=True, generator=ctx.generator())
    return _resampled(ctx, setup, order, why, "class-balanced batches", code)


@fix("data.unnormalized", stage="data")
def standardize_inputs(ctx: Context, setup: Setup, option: int) -> Outcome:
    """The model fed inputs standardized with the per-channel mean and std of the samples read."""
    s = ctx.signals
    means, stds = s.get(N.INPUT_CHANNEL_MEAN), s.get(N.INPUT_CHANNEL_STD)
    if not means or not stds or not all(math.isfinite(v) for v in [*means, *stds]):
        return Refused("the per-channel input statistics are missing or not finite (see data.nonfinite)")
    if standardized(means, stds):
        return Refused("the inputs are already standardized (per-channel mean ~0, std ~1)", needless=True)
    x = ctx.train[0].first_input
    if not x.is_floating_point():
        return Refused(f"the inputs are {x.dtype} (indices, not measurements): there is no scale to standardize")
    shape = [1, len(means)] + [1] * (x.dim() - 2) if x.dim() >= 2 else [len(means)]
    mean = torch.tensor(means, dtype=torch.float32, device=ctx.device).reshape(shape)
    std = torch.tensor(stds, dtype=torch.float32, device=ctx.device).reshape(shape)
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
        setup.but(inputs=Scale(mean, std)),
        f"inputs standardized inside the model: (x - mean) / std over {len(means)} channels "
        f"(means {shown_mean or 'per channel'}, stds {shown_std or 'per channel'})",
        code,
    )


@fix("data.target_scale", stage="data")
def standardize_targets(ctx: Context, setup: Setup, option: int) -> Outcome:
    """The loss on standardized targets, the model's output mapped back to the targets' units."""
    mean, std = ctx.signals.get(N.TARGET_MEAN), ctx.signals.get(N.TARGET_STD)
    if mean is None or not std or not math.isfinite(mean) or not math.isfinite(std):
        return Refused("the target mean and std are missing or not finite (see data.nonfinite)")
    if ctx.task.kind != "regression":
        return Refused(f"the task is {ctx.task.kind}, not regression: its targets are labels", needless=True)
    if standardized([mean], [std]):
        return Refused("the targets are already standardized (mean ~0, std ~1)", needless=True)
    if not isinstance(ctx.outputs, torch.Tensor):
        return Refused(f"the model returns a {type(ctx.outputs).__name__}: scale its prediction by hand")
    return Applied(
        setup.but(outputs=Scale(mean, std), loss_fn=StandardizedLoss(setup.loss_fn, mean, std)),
        f"loss computed on standardized targets (y - {mean:.4g}) / {std:.4g}; the model's output is mapped back "
        f"(output * {std:.4g} + {mean:.4g}), so its predictions stay in your units",
        f"y_mean, y_std = {mean:.6g}, {std:.6g}  # of the training targets\n"
        "loss = loss_fn(model(x), (y - y_mean) / y_std)  # train on standardized targets\n"
        "prediction = model(x) * y_std + y_mean  # and undo it for predictions",
    )
