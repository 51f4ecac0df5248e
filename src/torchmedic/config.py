"""How much diagnose() measures and how its fixes choose their settings, with the reason for each value; the
thresholds the rules judge by are a `Thresholds` inside."""

from __future__ import annotations

from dataclasses import dataclass, field

from torchmedic.thresholds import Thresholds

DEFAULT_BUDGET_S = 10.0  # diagnose()'s seconds at most: CIFAR-size CNNs take a median 2.5 s, at most 9.3 s, on 2
# cores with every fix tried that fits; a big model (a segmentation net) can need 30 to confirm a slow cause


@dataclass(frozen=True)
class DiagnoseConfig:
    # --- how much to measure ---
    trial_steps: int = 30  # enough for most healthy setups to beat the constant output on a few batches ...
    long_trial_steps: int = 75  # ... and a slow starter (plain SGD, global pooling) gets this long before "stuck" ...
    patience_steps: int = 1000  # ... and, before a slow setup is blamed, up to this long (stopping once it learns):
    # half of a realistic run (Thresholds.realistic_steps), where a healthy slow starter has long kicked in
    pool_batches: int = 24  # training batches cycled in a trial: enough distinct samples that a model which learns
    # also generalizes (three batches let a wide head memorize 192 samples and fail on every held-out one)
    range_batches: int = 3  # the range test cycles fewer: more distinct batches make its one-step-per-LR curve noisy
    min_pool_samples: int = 32  # with tiny batches, take more of them so a trial sees enough samples
    max_trial_batch: int = 32  # larger batches are subsampled: the cost of a trial is what limits diagnose(), and 32
    # samples a step show the same symptom (the held-out judgement keeps its 512 samples)
    held_out_samples: int = 384  # samples of later batches to measure generalization (gain noise ~0.025)
    audit_batches: int = 64  # the data audit reads at most this many batches ...
    audit_samples: int = 8192  # ... or this many samples ...
    audit_share: float = 0.2  # ... or this share of the budget
    lr_range_steps: int = 40  # one step per LR over 1e-7 .. 10 is coarse but enough to find orders of magnitude
    seed: int = 0  # trials, re-inits, resampled batches and new layers draw from generators seeded with this

    # --- how fixes choose their settings ---
    usual_sgd_lr: float = 1e-2  # the LR most SGD users start from: what a far-too-low LR is raised to at least
    usual_adaptive_lr: float = 1e-3  # the same for Adam and its kin (Adam's own default)
    long_run_margin: float = 3.0  # the range test holds each LR for one step; a whole run at the LR it suggests can
    # die or overfit (ReLUs killed by SGD at 0.08 with momentum over 300 steps), so fixes keep a third of it
    fallback_lr_factor: float = 0.1  # the next LR to try when the range test's LR does not verify
    min_lr_decades: float = 0.5  # an LR within ~3x of the current one is no reason to change the line

    thresholds: Thresholds = field(default_factory=Thresholds)

    def usual_lr(self, optimizer: str) -> float:
        """The LR most users of this optimizer class start from: what a far-too-low LR is raised to at least."""
        return self.usual_sgd_lr if optimizer == "SGD" else self.usual_adaptive_lr
