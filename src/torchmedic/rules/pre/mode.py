"""Rules for train/eval behaviour visible before training: BatchNorm fed batches too small for statistics."""

from __future__ import annotations

from torchmedic.config import DiagnoseConfig
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.rules.pre.common import confirm, module_ref, symptom_evidence, verification
from torchmedic.rules.registry import rule
from torchmedic.signals import Signals


@rule("mode.bn_small_batch")
def bn_small_batch(s: Signals, c: DiagnoseConfig) -> Finding | None:
    norms = s.get("model.batchnorm") or []
    batch = s.get("data.batch_size", 0)
    values = s.scoped("bn.values_per_channel")
    error = s.get("bn.error")
    small = {k: v for k, v in values.items() if v < c.min_bn_values}
    if not norms or not (error or batch <= 2 or small):
        return None
    check = verification(s, "mode.bn_small_batch", c)
    gap = s.get("bn.train_eval_gap")
    return Finding(
        "mode.bn_small_batch",
        confirm(0.85 if error or batch <= 2 else 0.7, check, structural=True),
        f"BatchNorm ({', '.join(module_ref(n) for n in norms[:3])}) is trained on batches of {batch}: the batch "
        "statistics it normalizes with are degenerate (a sample or two pushed to fixed normalized values), and the "
        "running statistics "
        f"used in eval mode do not match{f'; {error}' if error else ''}.",
        [
            Evidence("batch size", batch, ">= 8 with BatchNorm"),
            *[Evidence("values per BatchNorm channel", v, f">= {c.min_bn_values}", k) for k, v in small.items()],
            *([Evidence("train- vs eval-mode output gap", gap, "small")] if gap is not None else []),
            *symptom_evidence(s, c),
        ],
        Fix(
            "Use batches of 16+ samples, or replace BatchNorm with GroupNorm/LayerNorm, which do not depend on the "
            "batch.",
            "loader = DataLoader(train_set, batch_size=32, shuffle=True)\n"
            "# or: nn.GroupNorm(num_groups=8, num_channels=C) instead of nn.BatchNorm2d(C)",
        ),
        check,
    )
