"""Fixes for the weights at the start: re-initialize with the scheme made for each layer's activation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchmedic.batch import Batch
from torchmedic.fixes.registry import Applied, Outcome, fix
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
