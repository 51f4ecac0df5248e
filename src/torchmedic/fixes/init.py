"""Fixes for the weights at the start: re-initialize with the scheme made for each layer's activation, or reset
the layers that hold NaN or Inf."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from torchmedic.batch import Batch
from torchmedic.fixes.registry import Applied, Outcome, Refused, fix
from torchmedic.lines import module_ref
from torchmedic.remedies.weight_init import Scheme, init_weights
from torchmedic.setup import Scale, Setup

if TYPE_CHECKING:
    from torchmedic.context import Context

SCHEMES: tuple[Scheme, ...] = ("kaiming", "lsuv")  # the classic recipe first; LSUV, which measures variances, next
REINIT = (
    "for m in model.modules():\n"
    "    if isinstance(m, nn.Conv2d):\n"
    "        nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')\n"
    "    elif isinstance(m, nn.Linear):\n"
    "        nn.init.xavier_uniform_(m.weight)\n"
    "    if getattr(m, 'bias', None) is not None:\n"
    "        nn.init.zeros_(m.bias)"
)


RESET_NONFINITE = (
    "for m in model.modules():\n"
    "    own = [*m.parameters(recurse=False), *m.buffers(recurse=False)]\n"
    "    if any(t.is_floating_point() and not torch.isfinite(t).all() for t in own):\n"
    "        m.reset_parameters()"
)


def _holding_nonfinite(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose own parameters or buffers hold NaN or Inf."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in _own_tensors(m))
    ]


def _own_tensors(module: nn.Module) -> list[torch.Tensor]:
    return [t.detach() for t in (*module.parameters(recurse=False), *module.buffers(recurse=False))]


def _as_fed(batch: Batch, inputs: Scale | None) -> Batch:
    """The batch as the model sees it inside the repaired setup (standardized when a remedy standardizes)."""
    if inputs is None:
        return batch
    x = (batch.first_input - inputs.mean) / inputs.std
    return batch.with_inputs((x, *batch.inputs[1:]) if isinstance(batch.inputs, tuple) else x)


@fix("init.too_small", "init.too_large", "init.symmetric", "init.dead_units", stage="model", options=2)
def reinit(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Kaiming (conv) and Xavier (linear) weights with the gain of the activation that follows, biases zeroed."""
    scheme = SCHEMES[option]
    batch = _as_fed(setup.train[0], setup.inputs)
    record = init_weights(setup.inner, scheme, batch=batch, generator=ctx.generator())
    rules = sorted({layer.rule.split("(")[0] for layer in record.layers})
    return Applied(
        setup,
        f"{len(record.layers)} layers re-initialized with scheme {scheme!r} ({', '.join(rules)}; biases zeroed)",
        f"torchmedic.init_weights(model, {scheme!r}{', batch=next(iter(loader))' if scheme == 'lsuv' else ''})"
        + ("  # or by hand:\n" + REINIT if scheme == "kaiming" else ""),
    )


@fix("init.nonfinite", stage="model")
def reset_nonfinite(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Each layer holding NaN or Inf back to PyTorch's default init (BatchNorm: its running statistics too); the
    other layers, perhaps pretrained, keep their weights."""
    broken = _holding_nonfinite(setup.inner)
    if not broken:
        return Refused("no layer holds NaN or Inf", needless=True)
    fixed = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.config.seed)
        for name, module in broken:
            reset = getattr(module, "reset_parameters", None)
            if not callable(reset):
                return Refused(
                    f"{module_ref(name)} ({type(module).__name__}) has no reset_parameters()", code=RESET_NONFINITE
                )
            reset()
            fixed.append(name)
    if _holding_nonfinite(setup.inner):
        return Refused("NaN or Inf remain after resetting the layers that held them", code=RESET_NONFINITE)
    refs = ", ".join(module_ref(n) for n in fixed[:3]) + (", ..." if len(fixed) > 3 else "")
    return Applied(
        setup,
        f"{len(fixed)} layer{'s' if len(fixed) > 1 else ''} holding NaN/Inf reset to the default init ({refs})",
        RESET_NONFINITE,
    )
