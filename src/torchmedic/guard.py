"""Leave the user's objects exactly as they were: snapshot what a probe could touch, restore it in `finally`."""

from __future__ import annotations

import copy
import random
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

_MODULE_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
_OPTIMIZER_HOOK_DICTS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")


@dataclass
class RngState:
    """Every random generator a probe may draw from: torch (CPU and CUDA), numpy and Python's `random`."""

    torch_cpu: torch.Tensor
    torch_cuda: list[torch.Tensor] | None
    numpy: Any
    python: Any

    @classmethod
    def capture(cls) -> RngState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), cuda, np.random.get_state(), random.getstate())

    def restore(self) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda is not None:
            torch.cuda.set_rng_state_all(self.torch_cuda)
        np.random.set_state(self.numpy)
        random.setstate(self.python)


@dataclass
class ModelState:
    """Weights, buffers, grads, requires_grad flags, train/eval modes and hooks of one model."""

    model: nn.Module
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    grads: dict[str, torch.Tensor | None] = field(default_factory=dict)
    requires_grad: dict[str, bool] = field(default_factory=dict)
    modes: dict[str, bool] = field(default_factory=dict)
    hooks: dict[tuple[str, str], OrderedDict[int, Any]] = field(default_factory=dict)

    @classmethod
    def capture(cls, model: nn.Module) -> ModelState:
        state = cls(model)
        with torch.no_grad():
            for name, p in model.named_parameters(remove_duplicate=False):
                state.tensors[name] = p.detach().clone()
                state.grads[name] = None if p.grad is None else p.grad.detach().clone()
                state.requires_grad[name] = p.requires_grad
            for name, b in model.named_buffers(remove_duplicate=False):
                state.tensors["buffer:" + name] = b.detach().clone()
        for name, module in model.named_modules(remove_duplicate=False):
            state.modes[name] = module.training
            for attr in _MODULE_HOOK_DICTS:
                hooks = getattr(module, attr, None)
                if isinstance(hooks, OrderedDict):
                    state.hooks[(name, attr)] = OrderedDict(hooks)
        return state

    def restore(self) -> None:
        model = self.model
        params = dict(model.named_parameters(remove_duplicate=False))
        buffers = dict(model.named_buffers(remove_duplicate=False))
        with torch.no_grad():
            for name, p in params.items():
                _copy_back(p, self.tensors.get(name))
                saved = self.grads.get(name)
                if saved is None:
                    p.grad = None
                elif p.grad is None or not _same(p.grad, saved):
                    p.grad = saved.clone()
                if name in self.requires_grad:
                    p.requires_grad_(self.requires_grad[name])
            for name, b in buffers.items():
                _copy_back(b, self.tensors.get("buffer:" + name))
        modules = dict(model.named_modules(remove_duplicate=False))
        for name, module in modules.items():
            if name in self.modes:
                module.training = self.modes[name]
        for (name, attr), saved_hooks in self.hooks.items():
            hooks = getattr(modules.get(name), attr, None)
            if isinstance(hooks, OrderedDict) and list(hooks.items()) != list(saved_hooks.items()):
                hooks.clear()
                hooks.update(saved_hooks)


@dataclass
class OptimizerState:
    """The optimizer's per-parameter state, its hyperparameters and its step hooks."""

    optimizer: torch.optim.Optimizer
    state: dict[Any, Any]
    groups: list[dict[str, Any]]
    hooks: dict[str, OrderedDict[int, Any]]

    @classmethod
    def capture(cls, optimizer: torch.optim.Optimizer) -> OptimizerState:
        state = {p: copy.deepcopy(s) for p, s in optimizer.state.items()}
        groups = [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        hooks = {a: OrderedDict(getattr(optimizer, a)) for a in _OPTIMIZER_HOOK_DICTS if hasattr(optimizer, a)}
        return cls(optimizer, state, groups, hooks)

    def restore(self) -> None:
        opt = self.optimizer
        if not _same_state(opt.state, self.state):
            opt.state.clear()
            opt.state.update({p: copy.deepcopy(s) for p, s in self.state.items()})
        for group, saved in zip(opt.param_groups, self.groups, strict=False):
            for key in [k for k in group if k != "params" and k not in saved]:
                del group[key]
            for key, value in saved.items():
                if not _same(group.get(key), value):
                    group[key] = copy.deepcopy(value)
        for attr, saved_hooks in self.hooks.items():
            hooks = getattr(opt, attr)
            if list(hooks.items()) != list(saved_hooks.items()):
                hooks.clear()
                hooks.update(saved_hooks)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and a.device == b.device
            and bool(
                torch.equal(a, b)
                or (
                    a.is_floating_point()
                    and torch.equal(a.isnan(), b.isnan())
                    and torch.equal(a.nan_to_num(), b.nan_to_num())
                )
            )
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _same_state(current: Any, saved: dict[Any, Any]) -> bool:
    return current.keys() == saved.keys() and all(_same(current[p], saved[p]) for p in saved)


def _copy_back(tensor: torch.Tensor, saved: torch.Tensor | None) -> None:
    if saved is not None and tensor.shape == saved.shape and not _same(tensor, saved):
        tensor.copy_(saved)


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The generators a loader shuffles with (its own and its sampler's, often the same object), once each:
    reading the loader advances them, and the user's next epoch would be shuffled differently."""
    sampler = getattr(loader, "sampler", None)
    found: dict[int, torch.Generator] = {}
    for owner in (loader, sampler, getattr(sampler, "sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())


@dataclass
class UserState:
    """Everything of the user's that torchmedic promises to leave untouched."""

    rng: RngState
    models: list[ModelState]
    optimizers: list[OptimizerState]
    grad_enabled: bool
    global_hooks: dict[str, OrderedDict[int, Any]]
    generators: list[tuple[torch.Generator, torch.Tensor]]

    @classmethod
    def capture(
        cls, model: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None, loader: Any = None
    ) -> UserState:
        return cls(
            rng=RngState.capture(),
            models=[] if model is None else [ModelState.capture(model)],
            optimizers=[] if optimizer is None else [OptimizerState.capture(optimizer)],
            grad_enabled=torch.is_grad_enabled(),
            global_hooks={name: OrderedDict(hooks) for name, hooks in _global_hook_dicts().items()},
            generators=[(g, g.get_state()) for g in loader_generators(loader)],
        )

    def restore(self) -> None:
        for model in self.models:
            model.restore()
        for optimizer in self.optimizers:
            optimizer.restore()
        for name, hooks in _global_hook_dicts().items():
            saved = self.global_hooks.get(name, OrderedDict())
            if list(hooks.items()) != list(saved.items()):
                hooks.clear()
                hooks.update(saved)
        torch.set_grad_enabled(self.grad_enabled)
        self.rng.restore()
        for generator, state in self.generators:
            generator.set_state(state)


def _global_hook_dicts() -> dict[str, OrderedDict[int, Any]]:
    from torch.nn.modules import module as module_mod
    from torch.optim import optimizer as optimizer_mod

    found: dict[str, OrderedDict[int, Any]] = {}
    for owner in (module_mod, optimizer_mod):
        for name in dir(owner):
            value = getattr(owner, name)
            if name.startswith("_global") and "hook" in name and isinstance(value, OrderedDict):
                found[f"{owner.__name__}.{name}"] = value
    return found


@contextmanager
def preserved(
    model: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None, loader: Any = None
) -> Iterator[UserState]:
    """Run the body, then put the model, the optimizer, the loader's generators, the RNGs and the global hooks
    back as they were, also when the body raises or is interrupted."""
    state = UserState.capture(model, optimizer, loader)
    try:
        yield state
    finally:
        state.restore()
