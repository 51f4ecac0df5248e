"""BatchNorm trained on batches of 2: the batch statistics are degenerate, eval-mode outputs differ from training."""

from __future__ import annotations

import torch
from torch import nn

from bench.cases.registry import Setup, case, on_split
from bench.data import breast_cancer, digits, standardize
from bench.models import mlp


@case("mode.bn_small_batch", steps=300)
def mode_bn_batch2_mlp() -> Setup:
    """A 10-layer BatchNorm1d MLP trained with batch_size=2: each normalized feature is +-1, eval mode is at chance."""
    d = standardize(digits())
    model = mlp([64] + [128] * 10 + [10], batch_norm=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "classification", batch_size=2)


@case("mode.bn_small_batch", steps=300)
def mode_bn_batch2_sgd() -> Setup:
    """Breast cancer, a 10-layer BatchNorm1d MLP with batch_size=2 and SGD: in eval mode it predicts one class."""
    d = standardize(breast_cancer())
    model = mlp([30] + [64] * 10 + [2], batch_norm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return on_split(d, model, nn.CrossEntropyLoss(), optimizer, "binary", batch_size=2)
