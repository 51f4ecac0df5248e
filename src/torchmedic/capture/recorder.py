"""What a running script does up to its first optimizer step: the batches its DataLoaders yield, the calls of its
top-level modules, its loss calls and the tensors it calls `backward()` on.

Global module hooks and optimizer step hooks, and wrappers around `torch.nn.functional`'s losses,
`torch.autograd.backward` and the DataLoader iterator, record these; `uninstall()` removes every one of them.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from torchmedic.monitor.auto import LOSSES
from torchmedic.monitor.probes.base import Handles

KEEP = 8  # loss calls and backward roots remembered: those of the last iterations before the step


@dataclass(frozen=True)
class ModuleCall:
    """One call of a top-level module: what it was given and what it returned."""

    module: nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any


@dataclass(frozen=True)
class LossCall:
    """One loss computed at top level: a loss module's call, or a functional loss with its keyword arguments."""

    fn: Callable[..., Any]
    input: Any
    target: Any
    kwargs: dict[str, Any]
    result: torch.Tensor


@dataclass(frozen=True)
class BatchSeen:
    """The latest batch a DataLoader yielded."""

    loader: DataLoader[Any]
    batch: Any


class Recorder:
    """Records the script's training objects until `on_step(optimizer)` is called at its first optimizer step.

    `on_step` runs inside the optimizer's step pre-hook; anything it schedules with `later` runs at the next
    top-level module call, where hooks may be added and removed safely."""

    def __init__(self, on_step: Callable[[torch.optim.Optimizer], None]) -> None:
        self.on_step = on_step
        self.calls: dict[int, ModuleCall] = {}  # id(module) -> its latest top-level call
        self.losses: deque[LossCall] = deque(maxlen=KEEP)
        self.roots: deque[torch.Tensor] = deque(maxlen=KEEP)
        self.batch: BatchSeen | None = None
        self.stepped = False
        self.backwards = 0  # backward() calls before the first step
        self._later: Callable[[], None] | None = None
        self._depth = 0
        self._loaders: weakref.WeakKeyDictionary[Any, weakref.ref[DataLoader[Any]]] = weakref.WeakKeyDictionary()
        self._hooks = Handles()
        self._patched: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        self._hooks.add(register_optimizer_step_pre_hook(self._before_step))
        self._hooks.add(register_module_forward_pre_hook(self._enter))
        self._hooks.add(register_module_forward_hook(self._leave, always_call=True))
        for name in LOSSES:
            self._patch(F, name, self._functional_loss(getattr(F, name)))
        self._patch(torch.autograd, "backward", self._backward(torch.autograd.backward))
        self._patch(DataLoader, "__iter__", self._loader_iter(DataLoader.__iter__))
        self._patch(_BaseDataLoaderIter, "__next__", self._next_batch(_BaseDataLoaderIter.__next__))

    def uninstall(self) -> None:
        self._hooks.remove()
        while self._patched:
            owner, name, original = self._patched.pop()
            setattr(owner, name, original)

    def later(self, action: Callable[[], None]) -> None:
        """Run `action` at the next top-level module call (or never, if none comes)."""
        self._later = action

    def forget(self) -> None:
        """Drop every recorded object, so the script's tensors and loaders are not kept alive."""
        self.calls.clear()
        self.losses.clear()
        self.roots.clear()
        self.batch = None

    # ---- hooks ----------------------------------------------------------------------------------------------------
    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self.stepped:
            self.stepped = True
            self.on_step(optimizer)

    def _enter(self, module: nn.Module, args: Any) -> None:
        if self._later is not None:
            action, self._later = self._later, None
            action()
        self._depth += 1

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self._depth = max(0, self._depth - 1)
        if self._depth or self.stepped:
            return
        if isinstance(module, nn.modules.loss._Loss):
            if len(args) >= 2 and isinstance(output, torch.Tensor) and output.requires_grad:
                self.losses.append(LossCall(module, args[0], args[1], {}, output))
        elif next(module.parameters(), None) is not None:
            self.calls[id(module)] = ModuleCall(module, tuple(args), {}, output)

    # ---- wrappers -------------------------------------------------------------------------------------------------
    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def _functional_loss(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def loss(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            if self._depth == 0 and not self.stepped and isinstance(result, torch.Tensor) and result.requires_grad:
                if len(args) > 2:
                    return result  # positional options (weight, size_average...): not reproduced, not recorded
                given = dict(zip(("input", "target"), args, strict=False)) | kwargs
                extra = {k: v for k, v in kwargs.items() if k not in ("input", "target")}
                self.losses.append(LossCall(fn, given.get("input"), given.get("target"), extra, result))
            return result

        return loss

    def _backward(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.stepped:
                self.backwards += 1
                roots = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
                self.roots.extend(t for t in roots if isinstance(t, torch.Tensor))
            return fn(tensors, *args, **kwargs)

        return backward

    def _loader_iter(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def loader_iter(loader: DataLoader[Any]) -> Any:
            iterator = fn(loader)
            with contextlib.suppress(TypeError):  # an iterator that cannot be referenced weakly goes unseen
                self._loaders[iterator] = weakref.ref(loader)
            return iterator

        return loader_iter

    def _next_batch(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def next_batch(iterator: Any) -> Any:
            batch = fn(iterator)
            ref = self._loaders.get(iterator)
            loader = ref() if ref is not None else None
            if loader is not None and not self.stepped:
                self.batch = BatchSeen(loader, batch)
            return batch

        return next_batch
