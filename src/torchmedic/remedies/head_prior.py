"""The output bias that makes a fresh model predict the targets' prior, so the loss at init is the label entropy."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from torchmedic.errors import InputError

ABSENT_CLASS_COUNT = 0.5  # a class missing from the batch counts as half a sample: its logit stays finite


@dataclass(frozen=True)
class HeadPrior:
    """The bias for the final layer and the task it was read from."""

    bias: torch.Tensor  # (out_features,)
    task: str  # "multiclass", "binary" or "regression"
    description: str  # what the bias holds, quoting the numbers


def head_prior(targets: torch.Tensor, out_features: int) -> HeadPrior:
    """Log class prior for class indices, the logit of the positive rate for 0/1 targets, the mean otherwise."""
    targets = targets.detach().cpu()
    if targets.numel() == 0:
        raise InputError("init_weights(scheme='head') got a batch with no targets: pass a batch with labels.")
    if not targets.is_floating_point() and out_features > 1:
        return _multiclass(targets.long().flatten(), out_features)
    values = targets.double()
    if bool(((values == 0) | (values == 1)).all()):
        columns = values.reshape(-1, out_features) if values.numel() % out_features == 0 else values.reshape(-1, 1)
        n = columns.shape[0]
        rate = columns.mean(dim=0).clamp(ABSENT_CLASS_COUNT / n, 1 - ABSENT_CLASS_COUNT / n)
        bias = (rate / (1 - rate)).log().expand(out_features)
        return HeadPrior(bias.float().clone(), "binary", f"logit of the positive rate {_fmt(rate)} (0/1 targets)")
    if values.numel() % out_features != 0:
        raise InputError(
            f"init_weights(scheme='head'): the final layer has {out_features} outputs but the targets have shape "
            f"{tuple(targets.shape)}, which does not split into {out_features} columns."
        )
    mean = values.reshape(-1, out_features).mean(dim=0)
    return HeadPrior(mean.float(), "regression", f"target mean {_fmt(mean)}: the loss at init is the target variance")


def _multiclass(labels: torch.Tensor, num_classes: int) -> HeadPrior:
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise InputError(
            f"init_weights(scheme='head'): labels range over [{low}, {high}] but the final layer has {num_classes} "
            f"outputs: class indices must lie in [0, {num_classes - 1}]."
        )
    counts = torch.bincount(labels, minlength=num_classes).double()
    absent = int((counts == 0).sum())
    prior = counts.clamp(min=ABSENT_CLASS_COUNT) / len(labels)
    text = f"log class prior over {len(labels)} labels (entropy {_entropy(counts):.4f} nats)"
    if absent:
        text += f"; {absent} classes absent from the batch count as {ABSENT_CLASS_COUNT} sample"
    return HeadPrior(prior.log().float(), "multiclass", text)


def _entropy(counts: torch.Tensor) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def _fmt(values: torch.Tensor) -> str:
    shown = ", ".join(f"{float(v):.4g}" for v in values.flatten()[:4])
    return f"[{shown}{', ...' if values.numel() > 4 else ''}]" if values.numel() > 1 else shown
