"""The label-permutation control: do the real labels generalize better than labels shuffled across samples?"""

from __future__ import annotations

import torch

from torchmedic import signal_names as N
from torchmedic.context import Context
from torchmedic.probes.trial_probe import control_setup


def label_permutation(ctx: Context) -> None:
    """Train at the range test's LR once with the real labels and once with labels shuffled across the pool."""
    generator = torch.Generator().manual_seed(ctx.config.seed)
    targets = torch.cat([b.loss_targets for b in ctx.train])
    targets = targets[torch.randperm(targets.shape[0], generator=generator).to(targets.device)]
    permuted, start = [], 0
    for batch in ctx.train:  # labels shuffled across the whole pool, so one-class batches get mixed labels too
        permuted.append(batch.with_targets(targets[start : start + batch.size]))
        start += batch.size
    real_setup = control_setup(ctx)
    real = ctx.trials["baseline"] if real_setup.spec == ctx.spec else ctx.trial(real_setup, "real labels")
    shuffled = ctx.trial(control_setup(ctx).but(train=tuple(permuted)), "permuted labels")
    ctx.signals.emit(N.PERMUTATION_LR, real.lr)
    ctx.signals.emit(N.PERMUTATION_FIT_GAIN, max(real.after_train.gain, ctx.signals.get(N.OVERFIT_GAIN, -1.0)))
    ctx.signals.emit(N.PERMUTATION_REAL_SCORE, real.after_held_out.score)  # from the predictions: a memorizer's
    ctx.signals.emit(N.PERMUTATION_PERMUTED_SCORE, shuffled.after_held_out.score)  # loss says how sure, not how right
