"""Rules for causes that live in the data: non-finite values, identical inputs, order, imbalance, scale, labels."""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.lines import module_ref
from torchmedic.rules.pre.common import (
    MECHANISM,
    SEEN,
    class_like,
    collapsed,
    confirm,
    diverged,
    fmt,
    learns_once_fixed,
    stuck,
    symptom_evidence,
)
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

ALL_DUPLICATES = 0.9  # nine in ten samples are copies: the dataset returns (nearly) one item
DUPLICATES = 0.6  # half the samples are copies: suspicious, yet augmentation-free datasets can repeat ...
DUPLICATES_STUCK = 0.15  # ... and more so when the model does not learn
SEQUENTIAL = 0.85  # the loader reads in stored order (shuffle=False) and the batches hold few classes
FEW_CLASSES = 0.7  # the batches hold few classes for another reason (a custom sampler)
IMBALANCE = 0.6  # one class dominates and the model does not learn ...
ONTO_MAJORITY = 0.15  # ... and it collapsed onto exactly that class
UNNORMALIZED = 0.6  # the input scale is far from 1 and the model does not learn ...
EXTREME = 0.1  # ... 5x beyond the threshold
UNTESTED = 0.5  # no trial could run (NaN data): the scale alone speaks
LABELS_UNRELATED = 0.75  # fits its batches, real labels no better than permuted ones, and a linear model agrees


@rule("data.nonfinite")
def nonfinite(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """One NaN or Inf in a batch makes the loss NaN, its gradient NaN, and after one step every weight: the model
    then outputs NaN (or a constant) for everything."""
    bad_x, bad_y = s.get(N.INPUT_NONFINITE, 0), s.get(N.TARGET_NONFINITE, 0)
    if not bad_x and not bad_y:
        return None
    samples = s.get(N.DATA_SAMPLES_READ, 0)
    where = " and ".join(w for w, n in (("inputs", bad_x), ("targets", bad_y)) if n)
    return Claim(
        SEEN,
        f"{bad_x + bad_y} NaN/Inf values in the {where} of the first {samples} samples: one of them makes the loss "
        "and every gradient NaN, and the weights with them.",
        [Evidence("non-finite input values", bad_x, "0"), Evidence("non-finite target values", bad_y, "0")],
        "Remove or impute the missing values before training (they usually come from missing data, a log of 0 "
        "or a division by 0 in preprocessing), and check with torch.isfinite in the dataset.",
    )


@rule("data.low_variability")
def low_variability(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Inputs that (nearly) do not differ between samples leave the model one thing to learn: the best single
    output for all of them. Repeated inputs only matter when the same input comes with different labels: a few
    distinct inputs that each keep their label (a truth table) are learnable."""
    dupes, variation = s.get(N.INPUT_DUPLICATE_SHARE, 0.0), s.get(N.INPUT_VARIATION)
    purity = s.get(N.INPUT_LABEL_PURITY)
    flat = variation is not None and variation == variation and variation < t.min_input_variation
    learnable = purity is not None and purity >= t.min_label_purity
    if (dupes < t.max_duplicate_share or learnable) and not flat:
        return None
    if flat:
        prior = SEEN
        what = f"the inputs barely differ between samples (between-sample std / scale = {fmt(variation)})"
    else:
        prior = SEEN if dupes >= ALL_DUPLICATES else DUPLICATES + DUPLICATES_STUCK * stuck(v)
        what = f"{dupes:.0%} of the samples read are exact copies of an earlier sample"
    return Claim(
        prior,
        f"{what}: the model sees (nearly) the same input every time, so the best it can do is one output.",
        [
            Evidence("duplicate share", dupes, f"< {t.max_duplicate_share:g}"),
            Evidence("between-sample variation of inputs", variation, f">= {t.min_input_variation:g}"),
            *symptom_evidence(v, t),
        ],
        "Check the Dataset's __getitem__ (does it use its index?) and the conversion to tensors (a float image "
        "in [0, 1] cast to uint8 becomes all zeros).",
    )


@rule("data.unshuffled")
def unshuffled(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Batches that each hold one or few classes pull every step toward the classes of that batch; the model
    chases the last ones and ends up predicting them for everything."""
    per_batch = s.get(N.TARGET_BATCH_ENTROPY)
    expected = s.get(N.TARGET_SHUFFLED_BATCH_ENTROPY)
    if per_batch is None or not expected or expected < 0.3:
        return None
    ratio = per_batch / expected
    if ratio >= t.unshuffled_entropy_ratio:
        return None
    sequential = s.get(N.DATA_SAMPLER) == "sequential"
    check = v.get("data.unshuffled")
    return Claim(
        confirm(SEQUENTIAL if sequential else FEW_CLASSES, check, structural=True),
        f"each batch holds few classes: label entropy per batch {fmt(per_batch)} vs {fmt(expected)} for shuffled "
        f"batches{' (the loader uses a SequentialSampler: shuffle=False)' if sequential else ''}; every step "
        "pulls the model toward the classes of its batch, and it ends up predicting the last ones.",
        [
            Evidence("label entropy per batch", per_batch, f"~{fmt(expected)} (shuffled)"),
            Evidence("sampler", s.get(N.DATA_SAMPLER), "random"),
            *symptom_evidence(v, t),
        ],
        "Shuffle the training data every epoch.",
        verification=check,
    )


def _label_stats(s: Signals) -> tuple[list[int] | None, float | None, int]:
    hist = s.get(N.DATASET_HISTOGRAM, s.get(N.TARGET_HISTOGRAM))
    share = s.get(N.DATASET_MAJORITY_SHARE, s.get(N.TARGET_MAJORITY_SHARE))
    present = s.get(N.DATASET_CLASSES_PRESENT, s.get(N.TARGET_CLASSES_PRESENT, 0))
    return hist, share, present


@rule("data.class_imbalance")
def class_imbalance(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """When one class holds most labels, predicting it for everything already reaches the loss of the label
    entropy: a strong trap that gradient descent falls into first, and class weights or balanced batches undo."""
    if s.get(N.TASK_KIND) == "multilabel":
        return _rare_labels(s, t, v)
    hist, share, present = _label_stats(s)
    classes = s.get(N.TASK_NUM_CLASSES) or 0
    if hist is None or share is None or s.get(N.TASK_KIND, "") not in ("multiclass", "binary"):
        return None
    majority = max(range(len(hist)), key=lambda i: hist[i])
    if present == 1 and classes >= 2:
        return Claim(
            SEEN,
            f"every label read is class {majority} although the model has {classes} outputs: predicting "
            f"{majority} for everything is the perfect answer on this data.",
            [Evidence("classes present in the labels", present, f"{classes}"), Evidence("label histogram", hist, "")],
            "Check the filtering or label mapping that built the dataset: only one class survives it.",
        )
    if share < t.majority_share:
        return None
    check = v.get("data.class_imbalance")
    if not stuck(v) and not (check and check.passed):
        return None
    symptom = v.symptom
    onto_majority = collapsed(v) and symptom is not None and symptom.top_class == majority
    floor = s.get(N.LOSS_FLOOR)
    top = symptom.top_fraction if symptom is not None and symptom.top_fraction is not None else 0.0
    return Claim(
        confirm(IMBALANCE + ONTO_MAJORITY * collapsed(v), check, structural=onto_majority),
        f"class {majority} holds {share:.0%} of the labels; after {symptom.steps if symptom else 0} steps "
        f"{top:.0%} of held-out predictions are one class: predicting the majority already gives the loss of the "
        f"label entropy ({fmt(floor) if floor is not None else '?'}), a strong trap.",
        [
            Evidence("majority class share", share, f"< {t.majority_share:g}"),
            Evidence("label histogram", hist, ""),
            *symptom_evidence(v, t),
        ],
        "Weight the loss by inverse class frequency or sample the classes evenly (torchmedic.balance gives "
        "both), and judge the model by balanced accuracy, not accuracy.",
        verification=check,
    )


def _rare_labels(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Multi-label targets whose positives are rare: predicting 0 for every label already fits most entries, and the
    gradient of the few positives is drowned; a per-label pos_weight gives them their say."""
    shares = s.get(N.TARGET_POSITIVE_SHARE) or []
    rare = [share for share in shares if 0 < share <= 1 - t.majority_share]
    check = v.get("data.class_imbalance")
    if not shares or len(rare) * 2 < len(shares) or (not stuck(v) and not (check and check.passed)):
        return None
    mean = sum(shares) / len(shares)
    return Claim(
        confirm(IMBALANCE + ONTO_MAJORITY * collapsed(v), check),
        f"{len(rare)} of the {len(shares)} labels are positive for at most {1 - t.majority_share:.0%} of the samples "
        f"(on average {mean:.1%}): predicting 0 everywhere already fits most of the targets, a strong trap.",
        [Evidence("share of positives per label", shares, f"> {1 - t.majority_share:g}"), *symptom_evidence(v, t)],
        "Weight the positives of each label by negatives / positives (BCEWithLogitsLoss(pos_weight=...)), and judge "
        "each label by balanced accuracy or average precision.",
        verification=check,
    )


@rule("data.unnormalized")
def unnormalized(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Pre-activations and gradients scale with the input: raw 0-255 pixels make a normal LR overshoot and
    saturate units, inputs squashed to ~0 (normalized twice) leave the first layer barely moving."""
    rms = s.get(N.INPUT_FIRST_LAYER_RMS)
    if rms is None or rms != rms:  # NaN in the data: fall back to the audit's statistics of the finite values
        rms = s.get(N.INPUT_RMS)
    if rms is None or rms != rms:
        return None
    large, small = rms > t.max_input_scale, 0 < rms < t.min_input_scale
    variation = s.get(N.INPUT_VARIATION, 1.0)
    if not (large or small) or (small and variation is not None and variation < t.min_input_variation):
        return None
    check = v.get("data.unnormalized")
    init_ratio = _init_loss_ratio(s)
    symptom = stuck(v) or (init_ratio is not None and init_ratio > t.max_init_loss_ratio)
    extreme = rms > 5 * t.max_input_scale or rms < t.min_input_scale / 5
    untested = v.symptom is None  # no trial could run (e.g. NaN data): the scale alone must speak
    if not symptom and not (check and check.passed) and not (untested and extreme):
        return None
    prior = UNTESTED if untested and not symptom else UNNORMALIZED + EXTREME * extreme
    means, stds = s.get(N.INPUT_CHANNEL_MEAN, []), s.get(N.INPUT_CHANNEL_STD, [])
    kind = "far above" if large else "far below"
    layer = module_ref(s.get(N.INPUT_FIRST_LAYER, ""))
    return Claim(
        confirm(prior, check),
        f"the inputs reaching {layer} have a root-mean-square of {fmt(rms)}, {kind} the ~1 of standardized data "
        f"(channel means {fmt(means)}, stds {fmt(stds)}): pre-activations and gradients scale with the input, so "
        "a normal learning rate overshoots or the first layer barely moves.",
        [
            Evidence("input RMS at the first layer", rms, f"{t.min_input_scale:g} .. {t.max_input_scale:g}"),
            Evidence("per-channel input mean", means, "~0"),
            Evidence("per-channel input std", stds, "~1"),
            *symptom_evidence(v, t),
        ],
        "Standardize inputs with the training set's per-channel mean and std (torchmedic.dataset_stats "
        "measures them; transforms_for builds the pipeline), once: not twice.",
        verification=check,
    )


def _init_loss_ratio(s: Signals) -> float | None:
    init, ln_c = s.get(N.LOSS_INIT), s.get(N.LOSS_LN_C)
    return init / ln_c if init is not None and ln_c else None


@rule("data.target_scale")
def target_scale(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Regression targets far beyond the output's reach at init make the squared error all offset: its gradient is
    huge, steps overshoot or crawl, and the model settles on about the mean."""
    if s.get(N.TASK_KIND) != "regression" or class_like(s, t):
        return None
    mean, std = s.get(N.TARGET_MEAN), s.get(N.TARGET_STD)
    out_std, out_abs = s.get(N.OUTPUT_BETWEEN_STD, 0.0), s.get(N.OUTPUT_ABS_MEAN, 0.0)
    if mean is None or std is None:
        return None
    reach = max(out_std, out_abs, 1e-3)
    scale = max(abs(mean), std)
    if scale / reach < t.max_target_scale and scale < t.max_target_scale:
        return None
    check = v.get("data.target_scale")
    if not (stuck(v) or diverged(v)) and not (check and check.passed):
        return None
    return Claim(
        confirm(MECHANISM, check),
        f"targets have mean {fmt(mean)} and std {fmt(std)} while the output at init varies by {fmt(out_std)}: "
        "the squared error is dominated by the offset, its gradient is huge, and the model predicts about the mean.",
        [
            Evidence("target mean", mean, "~0"),
            Evidence("target std", std, "~1"),
            Evidence("output std across the batch at init", out_std, f"within {t.max_target_scale:g}x of the targets'"),
            *symptom_evidence(v, t),
        ],
        "Standardize the targets for training and undo it for predictions.",
        verification=check,
    )


@rule("data.labels_unrelated")
def labels_unrelated(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Labels that do not belong to their inputs (shuffled separately, misaligned, shifted) can be memorized but
    not generalized: the model fits its batches while real labels do no better on held-out samples than permuted
    ones, and even a linear model finds nothing to predict."""
    if not stuck(v):
        return None  # trained patiently, the model learns: the labels were fine, the start slow
    real, permuted = s.get(N.PERMUTATION_REAL_SCORE), s.get(N.PERMUTATION_PERMUTED_SCORE)
    fit = s.get(N.PERMUTATION_FIT_GAIN)
    if real is None or permuted is None or fit is None or fit < t.min_gain:
        return None
    if real - permuted >= t.permutation_margin or learns_once_fixed(v):
        return None
    if (s.get(N.BATCH_MIXING) or 0.0) >= t.min_batch_mixing:
        return None  # a model that mixes samples cannot map each input to its label: no test of the labels
    linear, error = s.get(N.LINEAR_HELD_OUT_GAIN), s.get(N.LINEAR_HELD_OUT_GAIN_SE)
    if linear is not None and (linear >= t.min_gain or (error and linear >= t.min_significance * error)):
        return None  # a linear model predicts held-out labels from the inputs: they carry signal, if weak
    return Claim(
        LABELS_UNRELATED,
        f"the model fits its training batches (gain {fmt(fit)}) but real labels generalize no better than "
        f"shuffled ones (held-out score {fmt(real)} vs {fmt(permuted)}): the targets carry no signal the inputs "
        "predict; labels are misaligned with their inputs.",
        [
            Evidence("held-out gain of a linear model on the standardized inputs", linear, f">= {t.min_gain:g}"),
            Evidence("training-batch gain", fit, f">= {t.min_gain:g}"),
            Evidence("held-out score with real labels", real, f"> permuted + {t.permutation_margin:g}"),
            Evidence("held-out score with permuted labels", permuted, "~0"),
        ],
        "Check that inputs and labels are shuffled, split and indexed together (one permutation for both), and "
        "that no off-by-one shifts labels against images.",
    )
