"""What the monitor's probes share: weak references to the user's model and optimizer, and parameter names."""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchmedic.monitor.config import MonitorConfig

FORWARDS = itertools.count(1)  # a global clock of monitored forwards: which model ran last

# Module types whose weight rows are units that a ReLU after them can kill (embeddings are sparse by design).
UNIT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel and `torch.compile`, so that layer names
    read as in the user's model."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


class Context:
    """The monitored pair, held weakly so that the monitor never keeps the user's model alive."""

    def __init__(
        self,
        model: nn.Module | None,
        optimizer: torch.optim.Optimizer | None,
        config: MonitorConfig,
        fail: Callable[[object, BaseException], None],
        stepless: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.fail = fail  # a probe that raises calls this: it is disabled with a warning
        self.stepless = stepless  # called as training forwards pile up without an optimizer step
        self._model = weakref.ref(model) if model is not None else None
        self._optimizer = weakref.ref(optimizer) if optimizer is not None else None
        self.names: dict[int, str] = {}  # id(parameter) -> qualified name
        self.unit_params: set[int] = set()  # weights of hidden Linear/Conv layers (rows are units)
        self.output_param: int | None = None  # the last Linear/Conv weight: the output layer
        self.last_forward = 0  # FORWARDS tick of the model's latest forward
        self.step = 0  # optimizer steps taken
        self.forward_step: int | None = None  # the step the latest training forward belongs to
        self.unstepped = 0  # training forwards since the last step of the watched optimizer
        self.foreign_steps = 0  # ... and steps, meanwhile, of optimizers holding none of the model's parameters
        self.skipped_steps = 0  # ... and steps a GradScaler skipped because the gradients were not finite
        self.loss_scale: float | None = None  # the GradScaler's scale at the latest skipped step
        self.output_key: Any = None  # which tensor of a several-tensor output the loss reads, once seen
        self.refresh()

    @property
    def model(self) -> nn.Module | None:
        return None if self._model is None else self._model()

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return None if self._optimizer is None else self._optimizer()

    def refresh(self) -> None:
        """Re-read parameter names and layer roles (the model may have changed since the monitor started)."""
        model = self.model
        self.names, self.unit_params, self.output_param = {}, set(), None
        if model is not None:
            for module_name, module in unwrap(model).named_modules():
                for pname, p in module.named_parameters(recurse=False):
                    self.names.setdefault(id(p), f"{module_name}.{pname}" if module_name else pname)
                    if isinstance(module, UNIT_LAYERS) and pname == "weight":
                        self.unit_params.add(id(p))
                        self.output_param = id(p)
            if self.output_param is not None:
                self.unit_params.discard(self.output_param)
        optimizer = self.optimizer
        if optimizer is not None:
            for i, p in enumerate(self.optimizer_params()):
                self.names.setdefault(id(p), f"optimizer.param{i}")

    def optimizer_params(self) -> list[torch.Tensor]:
        optimizer = self.optimizer
        if optimizer is None:
            return []
        return [p for group in optimizer.param_groups for p in group["params"]]

    def trained_params(self) -> list[torch.Tensor]:
        """The parameters whose gradients and updates are measured: the optimizer's, else the model's."""
        params = self.optimizer_params()
        if not params and self.model is not None:
            params = list(self.model.parameters())
        return [p for p in params if p.requires_grad]

    def name(self, p: torch.Tensor) -> str:
        return self.names.get(id(p), f"param@{id(p):x}")
