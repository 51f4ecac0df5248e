"""Remedies for the weights at the start: re-initialize with the scheme made for each layer's activation."""

from __future__ import annotations

from torchmedic.batch import Batch
from torchmedic.finding import Finding
from torchmedic.remedies.weight_init import Scheme, init_weights
from torchmedic.repair.draft import Draft, Scale
from torchmedic.repair.remedy import Applied, Outcome, remedy
from torchmedic.repair.workspace import Workspace
from torchmedic.rules.pre.init import REINIT

SCHEMES: tuple[Scheme, ...] = ("kaiming", "lsuv")  # the classic recipe first; LSUV, which measures variances, next


def _as_fed(batch: Batch, inputs: Scale | None) -> Batch:
    """The batch as the model sees it inside the repaired setup (standardized when a remedy standardizes)."""
    if inputs is None:
        return batch
    x = (batch.first_input - inputs.mean) / inputs.std
    return batch.with_inputs((x, *batch.inputs[1:]) if isinstance(batch.inputs, tuple) else x)


@remedy("init.too_small", "init.too_large", "init.symmetric", "init.dead_units", stage="model", options=2)
def reinit(ws: Workspace, draft: Draft, findings: list[Finding], option: int) -> Outcome:
    """Kaiming (conv) and Xavier (linear) weights with the gain of the activation that follows, biases zeroed."""
    scheme = SCHEMES[option]
    batch = _as_fed(draft.train[0], draft.inputs)
    record = init_weights(draft.inner, scheme, batch=batch, generator=ws.generator())
    rules = sorted({layer.rule.split("(")[0] for layer in record.layers})
    return Applied(
        draft,
        f"{len(record.layers)} layers re-initialized with scheme {scheme!r} ({', '.join(rules)}; biases zeroed)",
        f"torchmedic.init_weights(model, {scheme!r}{', batch=next(iter(loader))' if scheme == 'lsuv' else ''})"
        + ("  # or by hand:\n" + REINIT.split("\n# or:")[0] if scheme == "kaiming" else ""),
    )
