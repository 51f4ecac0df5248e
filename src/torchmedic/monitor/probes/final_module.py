"""Which layer produced the model's output: a leaf module (a ReLU, a Softmax) or an op written in forward."""

from __future__ import annotations

from typing import Any

from torch import nn

from torchmedic import signal_names as N
from torchmedic.batch import primary_output
from torchmedic.monitor.probes.base import Probe
from torchmedic.monitor.record import StepRecord


class FinalModuleProbe(Probe):
    """On the first sampled training forward, hooks every leaf module and notes the type of the one whose output
    the model returned ("" when forward computed it with a function); the answer is kept, so later steps cost
    nothing. Live rules name an output activation only when they saw it here."""

    name = "final_module"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.final: str | None = None
        self._last: tuple[str, Any] | None = None  # (type name, output) of the leaf that ran last

    def arm(self, record: StepRecord) -> None:
        model = self.ctx.model
        if self.final is not None or model is None:
            return
        for module in model.modules():
            if next(module.children(), None) is None:
                self.temporary.add(module.register_forward_hook(self.guarded(self._leaf)))
        self.temporary.add(model.register_forward_hook(self.guarded(self._model)))

    def _leaf(self, module: nn.Module, args: Any, output: Any) -> None:
        self._last = (type(module).__name__, output)  # held: a freed output's id could be reused

    def _model(self, module: nn.Module, args: Any, output: Any) -> None:
        out = primary_output(output)
        if self.final is None and out is not None and module.training:
            self.final = self._last[0] if self._last is not None and self._last[1] is out else ""
            self._last = None
            self.disarm()

    def finish(self, record: StepRecord) -> None:
        if self.final is not None:
            record.note(N.OUTPUT_FINAL_MODULE, self.final)
