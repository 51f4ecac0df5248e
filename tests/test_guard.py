"""preserved() puts back everything a probe could touch, also when the body raises or is interrupted."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from torchmedic.guard import preserved


def _model_and_optimizer() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model(torch.randn(16, 4)).sum()
    loss.backward()
    optimizer.step()
    model.eval()
    model[0].weight.requires_grad_(False)
    return model, optimizer


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, object]:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "hooks": [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()],
        "opt": {i: {k: v.clone() for k, v in s.items()} for i, s in enumerate(optimizer.state.values())},
        "lr": optimizer.param_groups[0]["lr"],
        "torch_rng": torch.get_rng_state(),
        "np_rng": np.random.get_state()[1].copy(),
        "py_rng": random.getstate(),
    }


def _same(a: dict[str, object], b: dict[str, object]) -> None:
    for key in a["state"]:  # type: ignore[attr-defined]
        assert torch.equal(a["state"][key], b["state"][key]), key  # type: ignore[index]
    for x, y in zip(a["grads"], b["grads"], strict=True):  # type: ignore[call-overload]
        assert (x is None and y is None) or torch.equal(x, y)
    for key in ("requires_grad", "modes", "hooks", "lr", "py_rng"):
        assert a[key] == b[key], key
    assert torch.equal(a["torch_rng"], b["torch_rng"])  # type: ignore[arg-type]
    assert np.array_equal(a["np_rng"], b["np_rng"])  # type: ignore[arg-type]
    for i in a["opt"]:  # type: ignore[attr-defined]
        for k in a["opt"][i]:  # type: ignore[index]
            assert torch.equal(a["opt"][i][k], b["opt"][i][k])  # type: ignore[index]


def _vandalize(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    torch.randn(10)
    np.random.rand(3)
    random.random()
    model.train()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].running_mean.fill_(5.0)
    for p in model.parameters():
        p.requires_grad_(True)
        p.grad = None
    model.register_forward_hook(lambda *args: None)
    optimizer.param_groups[0]["lr"] = 10.0
    model(torch.randn(8, 4)).sum().backward()
    optimizer.step()


def test_everything_is_restored() -> None:
    model, optimizer = _model_and_optimizer()
    before = _snapshot(model, optimizer)
    with preserved(model, optimizer):
        _vandalize(model, optimizer)
    _same(before, _snapshot(model, optimizer))


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_everything_is_restored_when_the_body_raises(error: type[BaseException]) -> None:
    model, optimizer = _model_and_optimizer()
    before = _snapshot(model, optimizer)
    with pytest.raises(error), preserved(model, optimizer):
        _vandalize(model, optimizer)
        raise error()
    _same(before, _snapshot(model, optimizer))


def test_hooks_the_user_had_stay_and_new_ones_go() -> None:
    model, optimizer = _model_and_optimizer()
    calls: list[int] = []
    model.register_forward_hook(lambda *args: calls.append(1))
    with preserved(model, optimizer):
        model.register_forward_pre_hook(lambda *args: calls.append(2))
        handle = next(iter(model._forward_hooks))
        del model._forward_hooks[handle]
    model(torch.randn(2, 4))
    assert calls == [1]
