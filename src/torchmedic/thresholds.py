"""Every threshold the rules use, pre-flight and live, each with the reason for its value.

One name, one meaning: where the pre-flight doctor (a short trial on copies) and the live monitor (the user's own
run) judge a quantity differently, the names say which: `trial` for the doctor's trial, `run` for the monitor.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # --- what counts as learning (the symptom) ---
    min_gain: float = 0.1  # a setup that learns beats the best constant output by >= 10% of its loss in a trial
    min_skill: float = 0.2  # balanced accuracy a fifth of the way from chance to perfect: predictions follow inputs
    verify_margin: float = 0.1  # a fix removes the symptom when it raises gain or skill by >= 0.1 (and reaches it)
    prior_margin: float = 0.02  # held-out gain a model fitting only the label prior cannot exceed beyond noise
    collapse_share: float = 0.95  # >= 95% of predictions on one class is a collapse ...
    collapse_margin: float = 0.5  # ... unless the labels are that skewed: then above majority + half the rest
    max_loss_rise: float = 1.5  # a training loss that ends 1.5x above where it started has diverged ...
    min_held_out_gain: float = -1.0  # ... and so has a held-out loss above twice the best constant's: confidently wrong
    descending_fall: float = 0.5  # ... unless the training loss fell to half its start: steps descend, from far off
    min_confidence: float = 0.3  # weaker findings are dropped from the report

    # --- signal propagation at init ---
    max_init_std_decay: float = 1e-2  # output std / first-layer std: PyTorch default init keeps >1e-2 to ~10 layers
    max_run_std_decay: float = 1e-3  # between-sample std last / first layer in a run: the signal no longer arrives
    max_run_std_growth: float = 1e2  # the same ratio growing: the signal explodes with depth
    min_weight_gain: float = 0.2  # std(W)*sqrt(fan_in): default init 0.58, Kaiming 1.41; below 0.2 shrinks fast
    max_weight_gain: float = 4.0  # 3x Kaiming: activations grow by >2x per layer
    max_init_loss_ratio: float = 3.0  # loss at init / ln C: an untrained classifier sits at ~1
    dead_fraction: float = 0.9  # a layer whose inputs are dead for >90% of units has lost its signal
    saturation: float = 0.9  # tanh/sigmoid outputs pinned at their bounds pass (almost) no gradient
    min_output_spread: float = 1e-4  # between-sample std of the output: at ~0 the output is the bias
    max_row_spread: float = 1e-6  # rows of a weight equal to 1e-6 relative: units that cannot become different
    max_missing_keys: float = 0.5  # a pretrained load that filled less than half the model loaded nothing useful

    # --- learning rate ---
    realistic_steps: int = 2000  # a few epochs: a loss falling fast enough to learn within them is slow, not stuck
    lr_decades: float = 2.0  # the range test must find a working LR >= 100x away to blame the LR (its steps are
    # 5 per decade and its suggestion is noisy: less would blame usual LRs)
    typical_sgd_lr: tuple[float, float] = (1e-3, 1.0)  # effective SGD LRs people use (0.1 with momentum 0.9 is 1)
    typical_adaptive_lr: tuple[float, float] = (3e-5, 1e-2)  # the same for Adam, AdamW, RMSprop, Adagrad, ...
    max_trial_update_ratio: float = 1e-1  # median over layers and trial steps: healthy ~1e-3 (Karpathy); 100x above
    # is runaway (the median over the layers of a short trial sits lower than any one layer's peak)
    min_trial_update_ratio: float = 1e-4  # 10x below the healthy ~1e-3 over a trial: steps barely move the weights
    max_run_update_ratio: float = 1e-2  # the largest layer's ratio at its peak in a run: 10x above ~1e-3 kills units
    min_run_update_ratio: float = 1e-5  # 100x below ~1e-3 on the median layer, sustained: steps cannot move weights
    min_loss_progress: float = 0.05  # a run whose loss stayed within 5% of its first value has not left the start
    min_grad_kept: float = 1e-2  # grad norm now / first: below, the gradient vanished; small steps are not the LR
    min_trend_samples: int = 5  # sampled steps before a flat loss or a slow update counts as a trend
    lr_collapse_decades: int = 3  # an LR 1000x below its peak moves weights ~1e-6 per step: training has stopped
    lr_collapse_share: float = 0.1  # ... for >= 10% of the steps before it: a cosine tail to 0 lasts ~2%
    dead_rise: float = 0.3  # 30% of a layer's units died since the first sampled steps: a ReLU unit rarely returns
    trial_dead_rise: float = 0.5  # half of a layer's input units died within a short trial: steps too large
    loss_rise: float = 2.0  # the loss doubled from its first value: steps overshoot instead of descending
    max_unstepped_forwards: int = 32  # training forwards with backward and no optimizer step: more than gradient
    # accumulation uses (4-16 micro-batches); confirmed on later checks, the loop is named within 100 forwards

    # --- data ---
    max_input_scale: float = 20.0  # |mean| or std of a standardized input is ~1; 0-255 pixels give ~100
    min_input_scale: float = 0.02  # normalizing twice leaves std ~0.004
    min_input_variation: float = 1e-3  # between-sample std / overall input scale: samples (nearly) identical
    max_target_scale: float = 30.0  # regression targets beyond ~30x the output's reach need many steps to fit
    max_class_like: int = 20  # integer targets with more distinct values are numbers (ages, counts), not classes
    majority_share: float = 0.8  # one class holding >= 80% of the labels
    max_duplicate_share: float = 0.5  # more than half the samples identical to another ...
    min_label_purity: float = 0.9  # ... matters unless each input keeps one label for >= 90% of its copies
    unshuffled_entropy_ratio: float = 0.5  # per-batch label entropy below half the dataset's: sorted by class
    permutation_margin: float = 0.1  # real labels beat permuted ones by this held-out score: ~2 standard errors of
    # the difference of two skills measured on a few hundred held-out samples
    min_significance: float = 3.0  # standard errors above 0: labels unrelated to their inputs give a linear model a
    # held-out gain of 0 or below (it can only fit noise), so three standard errors above 0 is signal, if weak
    min_fit_share: float = 0.1  # output spread / target spread: a model that follows its targets is well above
    dominance: float = 2.0  # the majority class is at least twice as frequent as the next one
    min_predictions: int = 64  # predictions in the window before a collapse is judged (not a small-batch fluke)
    max_eval_shift: float = 1.0  # |eval mean - train mean| in pooled stds (median channel): same data stays < ~0.2
    max_eval_std_ratio: float = 3.0  # eval std / train std beyond 3x (or below 1/3): other preprocessing
    min_eval_captures: int = 1  # one evaluation batch of the same data stays far inside both thresholds

    # --- loss and architecture ---
    max_row_sum_dev: float = 1e-3  # |sum of a row - 1|: rows of a softmax sum to 1 up to rounding
    loss_match: float = 1e-3  # relative gap between the logged loss and cross-entropy on the outputs as logits
    min_zero_logits: float = 0.25  # logits exactly 0 are rare; a quarter of them means a ReLU on the output
    bound_margin: float = 0.01  # an output within 1% of 1 and never above sits at a sigmoid/tanh/clamp bound
    min_unreachable: float = 0.1  # >= 10% of the targets outside what the output can reach
    min_batch_mixing: float = 1e-3  # eval-mode outputs of other samples move by >0.1% when one sample changes

    # --- regularization and mode ---
    max_dropout: float = 0.8  # keeps < 20% of units: the signal is mostly noise
    max_decay_per_step: float = 1e-2  # lr * weight_decay: weights shrink by >1% a step
    min_trial_weight_kept: float = 0.8  # weight norm after a 30-step trial / before: decay ate a fifth of it
    min_run_weight_kept: float = 0.5  # weight norm now / at the start of a run under decay: half of it is gone
    output_collapse: float = 0.1  # the output's between-sample spread fell to 10% of its first value
    min_bn_values: int = 4  # a BatchNorm channel normalized over <4 values has degenerate statistics
    max_bn_batch: int = 2  # BatchNorm over 1-2 samples in a run: batch statistics are noise
    min_eval_forwards: int = 3  # evaluation forwards (no grad) before judging the mode they run in
