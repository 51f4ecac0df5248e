"""Copies of the model: runtime wrappers are looked through, wrappers that change the computation are kept."""

from __future__ import annotations

import torch
from torch import nn

from torchmedic.clone import clone_model
from torchmedic.wrappers import StandardizedInputs


class TimesTwo(nn.Module):
    """A user's wrapper with no parameters or buffers of its own that still changes the output."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * self.module(x)


def test_a_clone_computes_what_the_model_computes() -> None:
    x = torch.randn(5, 3)
    for model in (StandardizedInputs(nn.Linear(3, 2), torch.full((3,), 4.0), torch.full((3,), 2.0)),
                  TimesTwo(nn.Linear(3, 2))):  # fmt: skip
        copy = clone_model(model)
        assert type(copy) is type(model)
        assert torch.equal(copy(x), model(x))
        assert all(a is not b for a, b in zip(copy.parameters(), model.parameters(), strict=True))


def test_a_clone_looks_through_data_parallel() -> None:
    inner = nn.Linear(3, 2)
    copy = clone_model(nn.DataParallel(inner))
    assert isinstance(copy, nn.Linear) and torch.equal(copy.weight, inner.weight)
