"""Rules for train/eval behaviour visible before training: BatchNorm fed batches too small for statistics."""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.lines import module_ref
from torchmedic.rules.pre.common import STRUCTURAL, confirm, stuck, symptom_evidence
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

FEW_SAMPLES = 0.45  # batches of 1-2 samples with many values per channel (conv layers): noisy, often still fine
TINY_BATCH = 2  # batches of 1-2 samples: BatchNorm refuses one and normalizes two to +-1


@rule("mode.bn_small_batch")
def bn_small_batch(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """BatchNorm normalizes each channel with the statistics of the batch: over one or two samples (or a handful
    of values) they are degenerate, every sample is pushed to fixed normalized values, and the running statistics
    used in eval mode do not match what training saw."""
    norms = s.get(N.MODEL_BATCHNORM) or []
    batch = s.get(N.DATA_BATCH_SIZE, 0)
    values = s.scoped(N.BN_VALUES_PER_CHANNEL)
    error = s.get(N.BN_ERROR)
    small = {k: n for k, n in values.items() if n < t.min_bn_values}
    if not norms or not (error or batch <= TINY_BATCH or small):
        return None
    check = v.get("mode.bn_small_batch")
    degenerate = bool(error or small)
    if not degenerate and not stuck(v) and not (check and check.passed):
        return None  # one or two images still give each channel thousands of values: only a symptom can tell
    gap = s.get(N.BN_TRAIN_EVAL_GAP)
    prior = STRUCTURAL if degenerate else FEW_SAMPLES
    return Claim(
        confirm(prior, check, structural=degenerate),
        f"BatchNorm ({', '.join(module_ref(n) for n in norms[:3])}) is trained on batches of {batch}: the batch "
        "statistics it normalizes with are degenerate (a sample or two pushed to fixed normalized values), and the "
        f"running statistics used in eval mode do not match{f'; {error}' if error else ''}.",
        [
            Evidence("batch size", batch, ">= 8 with BatchNorm"),
            *[Evidence("values per BatchNorm channel", n, f">= {t.min_bn_values}", k) for k, n in small.items()],
            *([Evidence("train- vs eval-mode output gap", gap, "small")] if gap is not None else []),
            *symptom_evidence(v, t),
        ],
        "Use batches of 16+ samples, or replace BatchNorm with GroupNorm/LayerNorm, which do not depend on the batch.",
        verification=check,
    )
