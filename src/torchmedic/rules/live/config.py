"""Every threshold the live rules use, with the reason for its value.

The live rules compare the run with itself where they can (now vs the first sampled steps, the peak LR, the
dataset's label entropy); these thresholds say how far is too far."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveRuleConfig:
    # --- learning rate ---
    max_update_ratio: float = 1e-2  # update/weight norm per step: healthy ~1e-3 (Karpathy); 10x above kills units
    min_update_ratio: float = 1e-5  # 100x below the healthy ~1e-3: steps cannot move the weights
    min_loss_progress: float = 0.05  # a run whose loss stayed within 5% of its first value has not left the start
    min_grad_kept: float = 1e-2  # grad norm now / first: below, the gradient vanished; small steps are not the LR
    min_trend_samples: int = 5  # sampled steps before a flat loss or a slow update counts as a trend
    lr_collapse_decades: int = 3  # an LR 1000x below its peak moves weights ~1e-6 per step: training has stopped
    lr_collapse_share: float = 0.1  # ... for >= 10% of the steps before it: a cosine tail to 0 lasts ~2%
    dead_rise: float = 0.3  # 30% of a layer's units died since the first sampled steps: a ReLU unit rarely returns
    loss_rise: float = 2.0  # the loss doubled from its first value: steps overshoot instead of descending

    # --- initialization ---
    max_std_decay: float = 1e-3  # last / first layer activation std: default init keeps > 1e-2 over ~10 layers
    max_std_growth: float = 1e2  # last / first layer activation std: the signal explodes with depth
    min_output_spread: float = 1e-4  # between-sample std of the output: at ~0 the output is the bias
    max_init_loss_ratio: float = 3.0  # first loss / ln C: an untrained classifier sits at ~1
    saturation: float = 0.9  # tanh/sigmoid outputs pinned at their bounds pass (almost) no gradient
    dead_fraction: float = 0.9  # a layer with > 90% of its units dead from the start has lost its signal
    max_row_spread: float = 1e-6  # rows of a weight equal to 1e-6 relative: units that cannot become different
    max_missing_keys: float = 0.5  # a pretrained load that filled less than half the model loaded nothing useful

    # --- data ---
    max_input_scale: float = 20.0  # |mean| or std of a standardized input is ~1; 0-255 pixels give ~100
    min_input_scale: float = 0.02  # max |x| of an input normalized twice (x / 255 / 255) is ~0.004
    min_input_variation: float = 1e-3  # between-sample std / overall input scale: samples (nearly) identical
    max_target_scale: float = 30.0  # regression targets ~30x beyond the unit-scale output of a default init
    min_fit_share: float = 0.1  # output spread / target spread: a model that follows its targets is well above
    collapse_share: float = 0.95  # >= 95% of recent predictions on one class is a collapse
    dominance: float = 2.0  # the majority class is at least twice as frequent as the next one
    min_predictions: int = 64  # predictions in the window before a collapse is judged (not a small-batch fluke)
    unshuffled_entropy_ratio: float = 0.5  # label entropy of a batch below half the run's: batches sorted by class
    max_eval_shift: float = 1.0  # |eval mean - train mean| in pooled stds (median channel): same data stays < ~0.2
    max_eval_std_ratio: float = 3.0  # eval std / train std beyond 3x (or below 1/3): other preprocessing
    min_eval_captures: int = 1  # one evaluation batch of the same data stays far inside both thresholds

    # --- loss and architecture ---
    max_row_sum_dev: float = 1e-3  # |sum of a row - 1|: rows of a softmax sum to 1 up to rounding
    loss_match: float = 1e-3  # relative gap between the logged loss and cross-entropy on the outputs as logits
    min_zero_logits: float = 0.25  # logits exactly 0 are rare; a quarter of them means a ReLU on the output
    bound_margin: float = 0.01  # an output within 1% of 1 and never above sits at a sigmoid/tanh/clamp bound
    min_unreachable: float = 0.1  # >= 10% of the targets outside what the output can reach

    # --- regularization and mode ---
    max_dropout: float = 0.8  # keeps < 20% of units: the signal is mostly noise
    max_weight_shrink: float = 0.5  # the weights lost half their norm since the start under weight decay
    output_collapse: float = 0.1  # the output's between-sample spread fell to 10% of its first value
    max_bn_batch: int = 2  # BatchNorm over 1-2 samples: batch statistics are noise, eval differs from training
    min_eval_forwards: int = 3  # evaluation forwards (no grad) before judging the mode they run in
