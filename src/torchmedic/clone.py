"""Copies of the user's model and a recipe for the user's optimizer, so experiments never touch the originals."""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from torchmedic.errors import InputError

DEFAULT_OPTIMIZER = "Adam(lr=1e-3) over every parameter that requires grad"


def unwrap(model: nn.Module) -> nn.Module:
    """The module that holds the weights: `torch.compile`, DataParallel, DDP and other wrappers whose only child
    is `.module` are looked through, so parameter names match the user's."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and list(model._modules) == ["module"] and not model._parameters:
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


RUNTIME_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)  # they add devices, not computation


def without_runtime_wrappers(model: nn.Module) -> nn.Module:
    """The model inside `torch.compile`, DataParallel and DDP, which cannot be deep-copied as they are. Wrappers that
    change what the model computes (standardized inputs, a skipped op, the user's own) are kept."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, RUNTIME_WRAPPERS):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def clone_model(model: nn.Module) -> nn.Module:
    """A deep copy of the model (weights, buffers, modes, requires_grad), detached from the user's tensors."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model is a {type(model).__name__}, not a torch.nn.Module.")
    source = without_runtime_wrappers(model)
    try:
        copied = copy.deepcopy(source)
    except Exception as exc:
        raise InputError(
            f"torchmedic experiments on a copy of the model, and copy.deepcopy({type(source).__name__}) raised "
            f"{type(exc).__name__}: {exc}. Keep non-copyable objects (open files, locks, generators) out of the "
            "model's attributes."
        ) from exc
    for p in copied.parameters():
        p.grad = None
    return copied


def parameter_names(model: nn.Module) -> dict[int, str]:
    """Map id(parameter) -> qualified name, for every parameter of the model (shared ones once)."""
    return {id(p): name for name, p in unwrap(model).named_parameters()}


@dataclass(frozen=True)
class GroupSpec:
    """One parameter group: which of the model's parameters it holds (by name) and its hyperparameters."""

    names: tuple[str, ...]
    hyper: dict[str, Any]
    foreign: int = 0  # parameters in this group that are not the model's


@dataclass(frozen=True)
class OptimizerSpec:
    """How to rebuild the user's optimizer over a copy of the model: class, constructor defaults and groups."""

    cls: type[torch.optim.Optimizer]
    defaults: dict[str, Any]
    groups: tuple[GroupSpec, ...]
    is_default: bool = False
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, optimizer: torch.optim.Optimizer | None, model: nn.Module) -> OptimizerSpec:
        """Read the recipe from the user's optimizer, or the documented default when there is none."""
        if optimizer is None:
            names = tuple(n for n, p in unwrap(model).named_parameters() if p.requires_grad)
            return cls(torch.optim.Adam, {"lr": 1e-3}, (GroupSpec(names, {"lr": 1e-3}),), is_default=True)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(f"optimizer is a {type(optimizer).__name__}, not a torch.optim.Optimizer (or None).")
        ids = parameter_names(model)
        groups = []
        for group in optimizer.param_groups:
            names = tuple(ids[id(p)] for p in group["params"] if id(p) in ids)
            hyper = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            groups.append(GroupSpec(names, hyper, foreign=len(group["params"]) - len(names)))
        return cls(type(optimizer), dict(optimizer.defaults), tuple(groups))

    @property
    def held(self) -> set[str]:
        """Names of the model's parameters the optimizer updates."""
        return {n for g in self.groups for n in g.names}

    @property
    def foreign(self) -> int:
        return sum(g.foreign for g in self.groups)

    @property
    def lr(self) -> float:
        """The learning rate of the first group (the one most users set)."""
        return _as_float(self.groups[0].hyper.get("lr", self.defaults.get("lr", float("nan"))))

    @property
    def name(self) -> str:
        return self.cls.__name__

    def hyper(self, key: str, default: Any = None) -> Any:
        return self.groups[0].hyper.get(key, self.defaults.get(key, default))

    def scaled_lr(self, factor: float) -> OptimizerSpec:
        """The same optimizer with every group's learning rate multiplied by `factor`."""
        return self._map_hyper(lambda h: {**h, "lr": _as_float(h.get("lr", self.defaults.get("lr"))) * factor})

    def with_lr(self, lr: float) -> OptimizerSpec:
        return self._map_hyper(lambda h: {**h, "lr": lr})

    def with_hyper(self, **values: Any) -> OptimizerSpec:
        return self._map_hyper(lambda h: {**h, **{k: v for k, v in values.items() if k in h}})

    def over(self, names: tuple[str, ...]) -> OptimizerSpec:
        """The same optimizer over exactly these parameters, in one group with the first group's settings."""
        return replace(self, groups=(GroupSpec(names, dict(self.groups[0].hyper)),))

    def _map_hyper(self, fn: Any) -> OptimizerSpec:
        return replace(self, groups=tuple(replace(g, hyper=fn(dict(g.hyper))) for g in self.groups))

    def build(self, model: nn.Module) -> torch.optim.Optimizer:
        """A fresh optimizer of the same class and settings over `model` (a copy of the user's model).

        Groups that held none of the model's parameters get a throwaway tensor, so that stepping them changes
        nothing in the model, exactly as with the user's optimizer.
        """
        params = dict(unwrap(model).named_parameters())
        groups = []
        for g in self.groups:
            tensors: list[torch.Tensor] = [params[n] for n in g.names if n in params]
            if not tensors:
                device = next(iter(params.values())).device if params else None
                tensors = [torch.zeros(1, device=device, requires_grad=True)]
            groups.append({"params": tensors, **_fresh(g.hyper)})
        accepted = inspect.signature(self.cls.__init__).parameters
        kwargs = {k: v for k, v in _fresh(self.defaults).items() if k in accepted and k != "params"}
        try:
            return self.cls(groups, **kwargs)
        except Exception as exc:
            raise InputError(
                f"could not build a fresh {self.cls.__name__} over a copy of the model ({type(exc).__name__}: "
                f"{exc}); pass optimizer=None to use the default, {DEFAULT_OPTIMIZER}."
            ) from exc


def _fresh(hyper: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)) for k, v in hyper.items()}


def _as_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu().reshape(-1)[0])
    return float(value) if value is not None else float("nan")
