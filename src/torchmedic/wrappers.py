"""Small modules that put a remedy around the user's model or loss without touching their code.

Each model wrapper holds the model as its only child `module` and no parameters, so `unwrap()` looks through it
and parameter names stay the user's (the optimizer recipe, `state_dict` keys, the script lines).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchmedic.batch import primary_output, replace_primary

MIN_STD = 1e-8  # a feature constant over the data keeps scale 1: dividing by ~0 would blow up any other value


class StandardizedInputs(nn.Module):
    """The model fed standardized inputs: `(x - mean) / std` per channel (or feature), then the model."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, module: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("mean", mean)
        self.register_buffer("std", torch.where(std > MIN_STD, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return self.module((x - self.mean) / self.std, *args, **kwargs)


class ScaledOutputs(nn.Module):
    """The model's output mapped to the targets' scale: `output * std + mean`, so predictions read as targets."""

    def __init__(self, module: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.module, self.target_mean, self.target_std = module, float(mean), float(std)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.module(*args, **kwargs) * self.target_std + self.target_mean


class LossAdapter(nn.Module):
    """Base of the loss wrappers: the user's loss as `loss`, called on adapted outputs or targets."""

    def __init__(self, loss: Callable[..., Any]) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        raise NotImplementedError

    def labels(self, targets: torch.Tensor) -> torch.Tensor:
        """The targets as the innermost loss sees them: what predictions are compared with."""
        return self.loss.labels(targets) if isinstance(self.loss, LossAdapter) else targets


class StandardizedLoss(LossAdapter):
    """The loss computed on the standardized scale: outputs and targets both `(v - mean) / std`, so its gradient
    does not grow with the targets' offset and spread."""

    def __init__(self, loss: Callable[..., Any], mean: float, std: float) -> None:
        super().__init__(loss)
        self.target_mean, self.target_std = float(mean), float(std)

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        scale = self.target_std
        return self.loss((outputs - self.target_mean) / scale, (targets - self.target_mean) / scale)


class MatchedTargets(LossAdapter):
    """The loss with targets reshaped to the output's shape when they hold as many values (`[N]` vs `[N, 1]`)."""

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        out = primary_output(outputs)
        if out is not None and out.shape != targets.shape and out.numel() == targets.numel():
            targets = targets.reshape(out.shape)
        return self.loss(outputs, targets)


class ReshapedTargets(LossAdapter):
    """The loss fed targets of shape `(N, *tail)`: the shape a loss that reshapes the output internally (a head that
    squeezes its logits) compares them with."""

    def __init__(self, loss: Callable[..., Any], tail: tuple[int, ...]) -> None:
        super().__init__(loss)
        self.tail = tail

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        return self.loss(outputs, targets.reshape(-1, *self.tail))


class IndexTargets(LossAdapter):
    """A class loss fed class indices: float or `[N, 1]` labels become a long `[N]` vector, moved by `shift` (-1 for
    labels that count from 1)."""

    def __init__(self, loss: Callable[..., Any], shift: int = 0) -> None:
        super().__init__(loss)
        self.shift = shift

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        return self.loss(outputs, self.labels(targets))

    def labels(self, targets: torch.Tensor) -> torch.Tensor:
        if targets.dim() == 2 and targets.shape[1] == 1:
            targets = targets.reshape(targets.shape[0])
        labels = targets.round().long() if targets.is_floating_point() else targets.long()
        return labels + self.shift


class FloatTargets(LossAdapter):
    """A loss on 0/1 targets (BCEWithLogitsLoss) fed them as floats, whatever dtype the loader gives."""

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        return self.loss(outputs, targets.float())


class LogOfProbabilities(LossAdapter):
    """A loss on log-probabilities fed the log of a model's probabilities (NLLLoss after a softmax)."""

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        out = primary_output(outputs)
        logged = out.clamp_min(1e-12).log() if out is not None else outputs
        return self.loss(replace_primary(outputs, logged) if out is not None else outputs, targets)


class LogSoftmaxed(LossAdapter):
    """A loss on log-probabilities fed log_softmax (over dim 1, the classes) of a model's raw scores."""

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        out = primary_output(outputs)
        return self.loss(outputs if out is None else replace_primary(outputs, out.log_softmax(dim=1)), targets)


class RelabeledTargets(LossAdapter):
    """The loss fed class ids for targets stored in other units: each of the sorted `values` (0 and 255 of a mask)
    becomes its position (0, 1); float for a binary loss, long for a class loss."""

    values: torch.Tensor

    def __init__(self, loss: Callable[..., Any], values: list[float], binary: bool) -> None:
        super().__init__(loss)
        self.register_buffer("values", torch.tensor(sorted(values)))
        self.binary = binary

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        return self.loss(outputs, self.labels(targets))

    def labels(self, targets: torch.Tensor) -> torch.Tensor:
        values = self.values.to(targets.device, torch.float64)
        ids = torch.searchsorted(values, targets.double().contiguous()).clamp_max(len(values) - 1)
        return ids.float() if self.binary else ids.long()


def innermost_loss(loss_fn: Callable[..., Any]) -> Callable[..., Any]:
    """The user's (or a replaced) loss inside any adapters."""
    while isinstance(loss_fn, LossAdapter):
        loss_fn = loss_fn.loss
    return loss_fn


def with_innermost(loss_fn: Callable[..., Any], inner: Callable[..., Any]) -> Callable[..., Any]:
    """The same stack of adapters (copied, not changed) around another innermost loss."""
    if not isinstance(loss_fn, LossAdapter):
        return inner
    outer = copy.deepcopy(loss_fn)
    parent = outer
    while isinstance(parent.loss, LossAdapter):
        parent = parent.loss
    parent._modules.pop("loss", None)  # a module child cannot be overwritten by a plain function
    parent.loss = inner
    return outer
