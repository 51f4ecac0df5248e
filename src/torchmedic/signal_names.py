"""Every signal name, declared once: what probes emit and rules read is one of these typed constants, never a free
string. A `Name` is a `str`, so signals stay plain strings in JSON; `Signals` accepts only names declared here."""

from __future__ import annotations


class Name(str):
    """A declared signal name (`trial.held_out_gain`, `act.std`...): the measurement it stands for, scope aside."""

    __slots__ = ()


DECLARED: set[str] = set()


def _name(value: str) -> Name:
    DECLARED.add(value)
    return Name(value)


def derived(name: str, suffix: str) -> Name:
    """A name the monitor's history derives from a measured one: `loss.first`, `act.dead_fraction.baseline`..."""
    return _name(f"{name}.{suffix}")


# --- the run itself ---
LOSS = _name("loss")
LR = _name("lr")

# --- act.* ---
ACT_BETWEEN_STD = _name("act.between_std")
ACT_DEAD_AFTER = _name("act.dead_after")
ACT_DEAD_FRACTION = _name("act.dead_fraction")
ACT_IN_DEAD = _name("act.in_dead")
ACT_IN_STD = _name("act.in_std")
ACT_LAYERS = _name("act.layers")
ACT_MEAN = _name("act.mean")
ACT_OUT_MEAN = _name("act.out_mean")
ACT_OUT_STD = _name("act.out_std")
ACT_OUT_STD_AFTER = _name("act.out_std_after")  # after the baseline trial
ACT_SATURATED = _name("act.saturated")
ACT_SATURATION = _name("act.saturation")
ACT_STD = _name("act.std")
ACT_STD_RATIO = _name("act.std_ratio")

# --- batch.* ---
BATCH_INPUT_ROWS = _name("batch.input_rows")
BATCH_MIXING = _name("batch.mixing")
BATCH_OUTPUT_ROWS = _name("batch.output_rows")

# --- bias.* ---
BIAS_MEAN = _name("bias.mean")

# --- bn.* ---
BN_BATCH_SIZE = _name("bn.batch_size")
BN_ERROR = _name("bn.error")
BN_TRAIN_EVAL_GAP = _name("bn.train_eval_gap")
BN_VALUES_PER_CHANNEL = _name("bn.values_per_channel")

# --- data.* ---
DATA_BATCH_SIZE = _name("data.batch_size")
DATA_BATCHES_READ = _name("data.batches_read")
DATA_SAMPLER = _name("data.sampler")
DATA_SAMPLES_READ = _name("data.samples_read")

# --- dataset.* ---
DATASET_CLASSES_PRESENT = _name("dataset.classes_present")
DATASET_ENTROPY = _name("dataset.entropy")
DATASET_HISTOGRAM = _name("dataset.histogram")
DATASET_MAJORITY_SHARE = _name("dataset.majority_share")

# --- eval.* ---
EVAL_FORWARDS = _name("eval.forwards")
EVAL_TRAIN_MODE_FORWARDS = _name("eval.train_mode_forwards")

# --- eval_input.* ---
EVAL_INPUT_CAPTURES = _name("eval_input.captures")
EVAL_INPUT_MEAN = _name("eval_input.mean")

# --- grad.* ---
GRAD_BACKWARDS = _name("grad.backwards")
GRAD_CARRIED_OVER = _name("grad.carried_over")
GRAD_DEAD_FRACTION = _name("grad.dead_fraction")
GRAD_MISSING = _name("grad.missing")
GRAD_NONE = _name("grad.none")
GRAD_NORM = _name("grad.norm")
GRAD_NORM_FIRST = _name("grad.norm.first")
GRAD_OUTPUT_NORM = _name("grad.output_norm")
GRAD_PARAMS = _name("grad.params")
GRAD_STALE_MIN = _name("grad.stale_min")

# --- input.* ---
INPUT_ABS_MAX = _name("input.abs_max")
INPUT_BETWEEN_STD = _name("input.between_std")
INPUT_CHANNEL_MEAN = _name("input.channel_mean")
INPUT_CHANNEL_STD = _name("input.channel_std")
INPUT_DTYPE = _name("input.dtype")
INPUT_DUPLICATE_SHARE = _name("input.duplicate_share")
INPUT_LABEL_PURITY = _name("input.label_purity")
INPUT_FIRST_LAYER = _name("input.first_layer")
INPUT_FIRST_LAYER_RMS = _name("input.first_layer_rms")
INPUT_FLOAT = _name("input.float")
INPUT_MAX = _name("input.max")
INPUT_MEAN = _name("input.mean")
INPUT_MIN = _name("input.min")
INPUT_NONFINITE = _name("input.nonfinite")
INPUT_NONFINITE_STEPS = _name("input.nonfinite_steps")
INPUT_RMS = _name("input.rms")
INPUT_SHAPE = _name("input.shape")
INPUT_STD = _name("input.std")
INPUT_VARIATION = _name("input.variation")

# --- linear.* ---
LINEAR_HELD_OUT_GAIN = _name("linear.held_out_gain")
LINEAR_HELD_OUT_GAIN_SE = _name("linear.held_out_gain_se")

# --- load.* ---
LOAD_EXPECTED = _name("load.expected")
LOAD_MISSING = _name("load.missing")
LOAD_MISSING_FRACTION = _name("load.missing_fraction")
LOAD_MISSING_KEYS = _name("load.missing_keys")
LOAD_MODULE = _name("load.module")
LOAD_STRICT = _name("load.strict")
LOAD_UNEXPECTED = _name("load.unexpected")
LOAD_UNEXPECTED_KEYS = _name("load.unexpected_keys")

# --- loss.* ---
LOSS_BROADCAST_NUMEL = _name("loss.broadcast_numel")
LOSS_BROADCAST_SHAPE = _name("loss.broadcast_shape")
LOSS_BROADCAST_WARNING = _name("loss.broadcast_warning")
LOSS_BROADCASTS = _name("loss.broadcasts")
LOSS_INNER_SHAPE = _name("loss.inner_shape")  # the output's shape as the loss compared it, when it reshaped it
LOSS_CE_ON_OUTPUTS = _name("loss.ce_on_outputs")
LOSS_ERROR = _name("loss.error")
LOSS_FIRST = _name("loss.first")
LOSS_FLOOR = _name("loss.floor")
LOSS_INIT = _name("loss.init")
LOSS_KIND = _name("loss.kind")
LOSS_READS = _name("loss.reads")
LOSS_UNBOUNDED = _name("loss.unbounded")
LOSS_L1_ALIGNED = _name("loss.l1_aligned")
LOSS_L1_BROADCAST = _name("loss.l1_broadcast")
LOSS_LN_C = _name("loss.ln_c")
LOSS_MSE_ALIGNED = _name("loss.mse_aligned")
LOSS_MSE_BROADCAST = _name("loss.mse_broadcast")
LOSS_OUTPUT_NUMEL = _name("loss.output_numel")
LOSS_RECENT = _name("loss.recent")
LOSS_REQUIRES_GRAD_GRAPH = _name("loss.requires_grad_graph")

# --- lr.* ---
LR_DECADE_STEPS = _name("lr.decade_steps")
LR_FRACTION = _name("lr.fraction")
LR_PEAK = _name("lr.peak")

# --- lr_range.* ---
LR_RANGE_BEST_LR = _name("lr_range.best_lr")
LR_RANGE_CONFIDENCE = _name("lr_range.confidence")
LR_RANGE_FLAT = _name("lr_range.flat")
LR_RANGE_LOSSES = _name("lr_range.losses")  # the smoothed curve, one loss per LR of lr_range.lrs
LR_RANGE_LRS = _name("lr_range.lrs")
LR_RANGE_METHOD = _name("lr_range.method")
LR_RANGE_STOP = _name("lr_range.stop")
LR_RANGE_SUGGESTION = _name("lr_range.suggestion")

# --- mode.* ---
MODE_DEPENDENT_IN_EVAL = _name("mode.dependent_in_eval")
MODE_DEPENDENT_LAYERS = _name("mode.dependent_layers")
MODE_MAX_DROPOUT = _name("mode.max_dropout")
MODE_TRAINING = _name("mode.training")

# --- model.* ---
MODEL_BATCHNORM = _name("model.batchnorm")
MODEL_CLASS = _name("model.class")
MODEL_DROPOUT = _name("model.dropout")
MODEL_FUNCTIONAL_DROPOUT = _name("model.functional_dropout")
MODEL_FOLLOWING = _name("model.following")
MODEL_FROZEN = _name("model.frozen")
MODEL_HEAD = _name("model.head")
MODEL_PARAMS = _name("model.params")
MODEL_SOFTMAX_DIMS = _name("model.softmax_dims")
MODEL_TRAINABLE_PARAMS = _name("model.trainable_params")
MODEL_UNREGISTERED = _name("model.unregistered")
MODEL_UNREGISTERED_PARAMS = _name("model.unregistered_params")

# --- monitor.* ---
MONITOR_EARLY = _name("monitor.early")
MONITOR_SAMPLED_STEPS = _name("monitor.sampled_steps")
MONITOR_STEP = _name("monitor.step")
MONITOR_STOP = _name("monitor.stop")
MONITOR_UNSTEPPED_FORWARDS = _name("monitor.unstepped_forwards")  # training forwards since the last step
MONITOR_FOREIGN_STEPS = _name("monitor.foreign_steps")  # ... and steps of optimizers holding none of the model
MONITOR_SKIPPED_STEPS = _name("monitor.skipped_steps")  # ... and steps a GradScaler skipped (inf/NaN gradients)
MONITOR_LOSS_SCALE = _name("monitor.loss_scale")  # the GradScaler's scale at its latest skipped step

# --- optim.* ---
OPTIM_CLASS = _name("optim.class")
OPTIM_DECOUPLED = _name("optim.decoupled")
OPTIM_DEFAULT = _name("optim.default")
OPTIM_FOREIGN = _name("optim.foreign")
OPTIM_HELD = _name("optim.held")
OPTIM_HELD_SHARE = _name("optim.held_share")
OPTIM_LR = _name("optim.lr")
OPTIM_MOMENTUM = _name("optim.momentum")
OPTIM_PARAMS = _name("optim.params")
OPTIM_UNHELD = _name("optim.unheld")
OPTIM_UNHELD_NAMES = _name("optim.unheld_names")
OPTIM_UNHELD_TRAINABLE = _name("optim.unheld_trainable")
OPTIM_WEIGHT_DECAY = _name("optim.weight_decay")

# --- output.* ---
OUTPUT_ABS_MEAN = _name("output.abs_mean")
OUTPUT_BETWEEN_STD = _name("output.between_std")
OUTPUT_BETWEEN_STD_FIRST = _name("output.between_std.first")
OUTPUT_FINITE = _name("output.finite")
OUTPUT_LOGIT_OP = _name("output.logit_op")
OUTPUT_LOGIT_OP_ORDINAL = _name("output.logit_op_ordinal")
OUTPUT_LOGIT_OP_SCOPE = _name("output.logit_op_scope")
OUTPUT_LOGSUMEXP_DEV = _name("output.logsumexp_dev")
OUTPUT_MAX = _name("output.max")
OUTPUT_MEAN = _name("output.mean")
OUTPUT_FINAL_MODULE = _name("output.final_module")
OUTPUT_MIN = _name("output.min")
OUTPUT_NONFINITE = _name("output.nonfinite")
OUTPUT_OP = _name("output.op")
OUTPUT_OP_DIM = _name("output.op_dim")
OUTPUT_OP_MODULE = _name("output.op_module")
OUTPUT_OP_ORDINAL = _name("output.op_ordinal")
OUTPUT_OP_SCOPE = _name("output.op_scope")
OUTPUT_ROW_SUM_DEV = _name("output.row_sum_dev")
OUTPUT_ROW_SUM_MEAN = _name("output.row_sum_mean")
OUTPUT_ROWS_LOG_NORMALIZED = _name("output.rows_log_normalized")
OUTPUT_ROWS_SUM_TO_ONE = _name("output.rows_sum_to_one")
OUTPUT_SHAPE = _name("output.shape")
OUTPUT_STD = _name("output.std")
OUTPUT_UNITS = _name("output.units")
OUTPUT_ZERO_FRACTION = _name("output.zero_fraction")
OUTPUT_ZERO_SHARE = _name("output.zero_share")

# --- overfit.* ---
OVERFIT_DIVERGED = _name("overfit.diverged")
OVERFIT_GAIN = _name("overfit.gain")

# --- permutation.* ---
PERMUTATION_FIT_GAIN = _name("permutation.fit_gain")
PERMUTATION_LR = _name("permutation.lr")
PERMUTATION_PERMUTED_SCORE = _name("permutation.permuted_score")
PERMUTATION_REAL_SCORE = _name("permutation.real_score")

# --- pred.* ---
PRED_ENTROPY = _name("pred.entropy")
PRED_HIST = _name("pred.hist")
PRED_HIST_WINDOW = _name("pred.hist.window")
PRED_HISTOGRAM = _name("pred.histogram")
PRED_TOP_SHARE = _name("pred.top_share")

# --- sensitivity.* ---
SENSITIVITY_OUTPUT_CHANGE = _name("sensitivity.output_change")
SENSITIVITY_RELATIVE = _name("sensitivity.relative")

# --- symptom.* ---
SYMPTOM_KIND = _name("symptom.kind")
SYMPTOM_TEXT = _name("symptom.text")

# --- target.* ---
TARGET_ABOVE_ONE_FRACTION = _name("target.above_one_fraction")
TARGET_BATCH_ENTROPY = _name("target.batch_entropy")
TARGET_BATCH_ENTROPY_RECENT = _name("target.batch_entropy.recent")
TARGET_BATCH_SIZE = _name("target.batch_size")
TARGET_BINARY_FRACTION = _name("target.binary_fraction")
TARGET_CLASSES_PRESENT = _name("target.classes_present")
TARGET_DTYPE = _name("target.dtype")
TARGET_ENTROPY = _name("target.entropy")
TARGET_ENTROPY_TOTAL = _name("target.entropy.total")
TARGET_FINITE = _name("target.finite")
TARGET_HIST = _name("target.hist")
TARGET_HIST_TOTAL = _name("target.hist.total")
TARGET_HIST_WINDOW = _name("target.hist.window")
TARGET_HISTOGRAM = _name("target.histogram")
TARGET_KIND = _name("target.kind")
TARGET_MAJORITY_SHARE = _name("target.majority_share")
TARGET_MAX = _name("target.max")
TARGET_POSITIVE_SHARE = _name("target.positive_share")
TARGET_MEAN = _name("target.mean")
TARGET_MIN = _name("target.min")
TARGET_NEGATIVE_FRACTION = _name("target.negative_fraction")
TARGET_NONFINITE = _name("target.nonfinite")
TARGET_NONFINITE_STEPS = _name("target.nonfinite_steps")
TARGET_RMS = _name("target.rms")
TARGET_SHAPE = _name("target.shape")
TARGET_SHUFFLED_BATCH_ENTROPY = _name("target.shuffled_batch_entropy")
TARGET_STD = _name("target.std")
TARGET_VALUES = _name("target.values")

# --- task.* ---
TASK_KIND = _name("task.kind")
TASK_NUM_CLASSES = _name("task.num_classes")

# --- trial.* ---
TRIAL_CHANGED_SHARE = _name("trial.changed_share")
TRIAL_SECONDS = _name("trial.seconds")
TRIAL_LABEL = _name("trial.label")
TRIAL_LR = _name("trial.lr")
TRIAL_LOSS_MAX = _name("trial.loss_max")
TRIAL_LOSS_RATE = _name("trial.loss_rate")
TRIAL_FLOOR = _name("trial.floor")
TRIAL_GAIN_BEFORE = _name("trial.gain_before")
TRIAL_HELD_OUT_GAIN_BEFORE = _name("trial.held_out_gain_before")
TRIAL_HELD_OUT_GAIN = _name("trial.held_out_gain")
TRIAL_HELD_OUT_FLOOR = _name("trial.held_out_floor")
TRIAL_OUTPUT_STD_BEFORE = _name("trial.output_std_before")
TRIAL_OUTPUT_STD = _name("trial.output_std")
TRIAL_TOP_FRACTION = _name("trial.top_fraction")
TRIAL_BALANCED_ACCURACY = _name("trial.balanced_accuracy")
TRIAL_ACCURACY = _name("trial.accuracy")
TRIAL_PREDICTED_CLASSES = _name("trial.predicted_classes")
TRIAL_CHANCE = _name("trial.chance")
TRIAL_TOP_CLASS = _name("trial.top_class")
TRIAL_DIVERGED = _name("trial.diverged")
TRIAL_ERROR = _name("trial.error")
TRIAL_GAIN = _name("trial.gain")
TRIAL_HELD_OUT_LOSS = _name("trial.held_out_loss")
TRIAL_LOSS_FIRST = _name("trial.loss_first")
TRIAL_LOSS_LAST = _name("trial.loss_last")
TRIAL_NONFINITE_STEP = _name("trial.nonfinite_step")
TRIAL_STEPS = _name("trial.steps")
TRIAL_TRAIN_BATCH_LOSS = _name("trial.train_batch_loss")

# --- update.* ---
UPDATE_NORM = _name("update.norm")
UPDATE_RATIO = _name("update.ratio")
UPDATE_RATIO_MAX = _name("update.ratio_max")
UPDATE_RATIO_MAX_PEAK = _name("update.ratio_max.peak")
UPDATE_RATIO_MEDIAN = _name("update.ratio_median")
UPDATE_RATIO_MEDIAN_RECENT = _name("update.ratio_median.recent")

# --- weight.* ---
WEIGHT_DISTINCT_ROWS = _name("weight.distinct_rows")
WEIGHT_GAIN = _name("weight.gain")
WEIGHT_NORM = _name("weight.norm")
WEIGHT_NORM_FIRST = _name("weight.norm.first")
WEIGHT_NORM_SERIES = _name("weight.norm.series")
WEIGHT_NONFINITE = _name("weight.nonfinite")  # NaN or Inf values of one parameter or buffer before training
WEIGHT_ROW_SPREAD = _name("weight.row_spread")
WEIGHT_ROWS = _name("weight.rows")
WEIGHT_SHRINK = _name("weight.shrink")
WEIGHT_SHRINK_MEDIAN = _name("weight.shrink_median")

# --- derived by the monitor's history and read by the live rules ---
INPUT_FINITE = _name("input.finite")
INPUT_CHANNEL_MEAN_RECENT = _name("input.channel_mean.recent")
INPUT_CHANNEL_STD_RECENT = _name("input.channel_std.recent")
INPUT_MEAN_RECENT = _name("input.mean.recent")
INPUT_STD_RECENT = _name("input.std.recent")
EVAL_INPUT_CHANNEL_MEAN_RECENT = _name("eval_input.channel_mean.recent")
EVAL_INPUT_CHANNEL_STD_RECENT = _name("eval_input.channel_std.recent")
EVAL_INPUT_MEAN_RECENT = _name("eval_input.mean.recent")
EVAL_INPUT_STD_RECENT = _name("eval_input.std.recent")
EVAL_INPUT_STD = _name("eval_input.std")
EVAL_INPUT_CHANNEL_MEAN = _name("eval_input.channel_mean")
EVAL_INPUT_CHANNEL_STD = _name("eval_input.channel_std")
