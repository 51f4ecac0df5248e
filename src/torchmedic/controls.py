"""Control experiments on the labels, run on demand by the differential diagnosis: can the model fit one batch, does
a linear model find a signal in the inputs, and do the real labels generalize better than shuffled ones?

They cost two or three trials, and only tell something when the symptom has no other explanation and the model
fits what it trains on (or one batch of it) without generalizing: then the labels themselves are the suspect.
"""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.context import Context
from torchmedic.probes.linear_probe import linear_probe
from torchmedic.probes.permutation import label_permutation
from torchmedic.probes.trial_probe import overfit_one_batch


def label_controls(ctx: Context, affordable: int) -> bool:
    """Run the controls that `affordable` trials allow; True when the label-permutation control ran."""
    s, t = ctx.signals, ctx.config.thresholds
    if ctx.train[0].targets is None or affordable < 1:
        return False
    if s.get(N.TRIAL_GAIN, -1.0) < t.min_gain and not s.has(N.OVERFIT_GAIN):
        overfit_one_batch(ctx)
        affordable -= 1
    if max(s.get(N.TRIAL_GAIN, -1.0), s.get(N.OVERFIT_GAIN, -1.0)) < t.min_gain:
        return False  # it fits nothing, not even one batch: no test of the labels
    linear_probe(ctx)
    if affordable < 2:
        return False
    label_permutation(ctx)
    return True
