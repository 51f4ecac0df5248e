"""Every threshold diagnose() uses, with the reason for its value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiagnoseConfig:
    # --- how much to measure ---
    trial_steps: int = 30  # enough for most healthy setups to beat the constant output on a few batches ...
    long_trial_steps: int = 75  # ... and a slow starter (plain SGD, global pooling) gets this long before "stuck"
    pool_batches: int = 3  # training batches cycled in a trial: more than one, so memorizing one is not learning
    min_pool_samples: int = 32  # with tiny batches, take more of them so a trial sees enough samples
    max_trial_batch: int = 128  # larger batches are subsampled: the cost of a trial is what limits diagnose()
    held_out_samples: int = 512  # samples of later batches to measure generalization (gain noise ~0.02 at 512)
    audit_batches: int = 64  # the data audit reads at most this many batches ...
    audit_samples: int = 8192  # ... or this many samples ...
    audit_share: float = 0.2  # ... or this share of the budget
    lr_range_steps: int = 40  # one step per LR over 1e-7 .. 10 is coarse but enough to find orders of magnitude
    seed: int = 0

    # --- what counts as learning ---
    min_gain: float = 0.1  # a setup that learns beats the best constant output by >= 10% of its loss in a trial
    verify_margin: float = 0.1  # a fix is verified when it raises the gain by >= 0.1 (and reaches min_gain)
    prior_margin: float = 0.02  # held-out gain a model fitting only the label prior cannot exceed beyond noise
    min_confidence: float = 0.3  # weaker findings are dropped from the report

    # --- signal propagation at init ---
    max_std_decay: float = 1e-2  # output std / first-layer std: PyTorch default init keeps >1e-2 to ~10 layers
    min_weight_gain: float = 0.2  # std(W)*sqrt(fan_in): default init 0.58, Kaiming 1.41; below 0.2 shrinks fast
    max_weight_gain: float = 4.0  # 3x Kaiming: activations grow by >2x per layer
    max_init_loss_ratio: float = 3.0  # loss at init / ln C: healthy inits sit at ~1
    dead_fraction: float = 0.9  # a layer whose inputs are dead for >90% of units has lost its signal
    saturation: float = 0.9  # tanh/sigmoid outputs pinned at their bounds pass no gradient

    # --- learning rate ---
    realistic_steps: int = 2000  # a few epochs: a loss falling fast enough to learn within them is slow, not stuck
    lr_decades: float = 2.0  # the range test must find a working LR >= 100x away to blame the LR (its steps are
    # 5 per decade and its suggestion is noisy: less would blame usual LRs)
    typical_sgd_lr: tuple[float, float] = (1e-3, 1.0)  # effective SGD LRs people use (0.1 with momentum 0.9 is 1)
    typical_adaptive_lr: tuple[float, float] = (3e-5, 1e-2)  # the same for Adam, AdamW, RMSprop, Adagrad, ...
    usual_sgd_lr: float = 1e-2  # the LR most SGD users start from: what a far-too-low LR is raised to at least
    usual_adaptive_lr: float = 1e-3  # the same for Adam and its kin (Adam's own default)
    max_update_ratio: float = 1e-1  # healthy training sits near 1e-3 (Karpathy); 100x above is runaway
    min_update_ratio: float = 1e-4  # 10x below the healthy ~1e-3: steps barely move the weights

    # --- data ---
    max_input_scale: float = 20.0  # |mean| or std of a standardized input is ~1; 0-255 pixels give ~100
    min_input_scale: float = 0.02  # normalizing twice leaves std ~0.004
    max_target_scale: float = 30.0  # regression targets beyond ~30x the output's reach need many steps to fit
    max_class_like: int = 20  # integer targets with more distinct values are numbers (ages, counts), not classes
    majority_share: float = 0.8  # one class holding >= 80% of the labels
    collapse_share: float = 0.95  # >= 95% of predictions on one class is a collapse
    max_duplicate_share: float = 0.5  # more than half the samples identical to another
    min_input_variation: float = 1e-3  # between-sample std / overall input scale
    unshuffled_entropy_ratio: float = 0.5  # per-batch label entropy below half the dataset's
    permutation_margin: float = 0.05  # real labels must beat permuted labels on held-out data by this much

    # --- regularization, normalization ---
    max_dropout: float = 0.8  # keeps < 20% of units: the signal is mostly noise
    max_decay_per_step: float = 1e-2  # lr * weight_decay: weights shrink by >1% a step
    min_bn_values: int = 4  # a BatchNorm channel normalized over <4 values has degenerate statistics

    def usual_lr(self, optimizer: str) -> float:
        """The LR most users of this optimizer class start from: what a far-too-low LR is raised to at least."""
        return self.usual_sgd_lr if optimizer == "SGD" else self.usual_adaptive_lr
