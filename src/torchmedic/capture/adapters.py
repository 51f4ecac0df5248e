"""The steps a script takes between its loader, its model and its loss, put around the model and the loss so that
diagnose() calls them the way the script did (`loss_fn(model(batch[0]), batch[1])`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchmedic.capture.views import View
from torchmedic.wrappers import LossAdapter


class ViewedModel(nn.Module):
    """The model with the script's input step before it (`x.view(-1, 784)`) and its output step after it
    (`torch.sigmoid(out).squeeze(1)`). Its only child is `module`, so parameter names stay the user's."""

    def __init__(self, module: nn.Module, inputs: View, outputs: View) -> None:
        super().__init__()
        self.module = module
        self.inputs, self.outputs = inputs, outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(self.module(self.inputs(x)))


class ViewedTargets(LossAdapter):
    """The loss on the targets as the script passed them (`y.float().unsqueeze(1)`)."""

    def __init__(self, loss: Callable[..., Any], targets: View) -> None:
        super().__init__(loss)
        self.targets = targets

    def forward(self, outputs: Any, targets: torch.Tensor) -> Any:
        return self.loss(outputs, self.labels(targets))

    def labels(self, targets: torch.Tensor) -> torch.Tensor:
        viewed = self.targets(targets)
        return self.loss.labels(viewed) if isinstance(self.loss, LossAdapter) else viewed
