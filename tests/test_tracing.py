"""The forward trace sees functional calls as well as modules, and WithoutOp removes exactly one op."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchmedic.batch import Batch
from torchmedic.tracing import WithoutOp, trace_forward


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.bn(self.conv(x)), negative_slope=0.2)
        return torch.sigmoid(self.fc(x.flatten(1))).view(x.shape[0], -1)


def test_output_op_and_following_activation_of_functional_calls() -> None:
    model = Functional().eval()
    trace, _ = trace_forward(model, Batch(torch.randn(2, 1, 6, 6), None))
    final = trace.output_op()
    assert final is not None and final.name == "sigmoid"
    op = trace.following_activation("conv")
    assert op is not None and op.name == "leaky_relu" and op.args["negative_slope"] == 0.2
    assert trace.following_activation("fc").name == "sigmoid"  # type: ignore[union-attr]
    assert not model._forward_hooks and not model.conv._forward_pre_hooks


def test_module_softmax_is_found_and_removed() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.Softmax(dim=1))
    x = torch.randn(6, 5)
    trace, _ = trace_forward(model, Batch(x, None))
    final = trace.output_op()
    assert final is not None and (final.name, final.scope, final.args["dim"]) == ("softmax", "3", 1)
    without = WithoutOp(model, final.name, final.ordinal)
    assert torch.equal(without(x), model[:3](x))
