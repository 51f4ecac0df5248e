"""Live rules for the data the loop feeds: scale, variability, non-finite values, class balance, ordering, and
evaluation batches that differ from training batches."""

from __future__ import annotations

import math
import statistics

from torchmedic import signal_names as N
from torchmedic.finding import Evidence, format_value
from torchmedic.rules.live.common import (
    LIKELY,
    MECHANISM_LIVE,
    SEEN_LIVE,
    SPECIFIC,
    batches_sorted,
    classification,
    early,
    finite,
    label_entropy_ratio,
    number,
)
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

NORMALIZE = "transforms.Normalize(mean, std)  # mean/std per channel, computed on the training set"


@rule("data.unnormalized", seen_by="live")
def unnormalized(s: Signals, t: Thresholds) -> Claim | None:
    """Inputs far from unit scale saturate or starve the first layer, whose init assumes standardized inputs."""
    mean, std, top = number(s, N.INPUT_MEAN), number(s, N.INPUT_STD), number(s, N.INPUT_ABS_MAX)
    if mean is None or std is None or top is None or top == 0:
        return None
    scale = max(abs(mean), std)
    evidence = [
        Evidence("input mean", mean, "~0"),
        Evidence("input std", std, "~1"),
        Evidence("largest |input|", top, "a few units"),
    ]
    if scale >= t.max_input_scale:
        return Claim(
            MECHANISM_LIVE,
            f"the inputs are not standardized (mean {format_value(mean)}, std {format_value(std)}): raw values "
            "such as 0-255 pixels or unscaled features make the first layer's outputs huge.",
            evidence,
            "Standardize inputs with the training set's per-channel mean and std.",
            NORMALIZE,
        )
    if top <= t.min_input_scale:
        return Claim(
            LIKELY,
            f"the inputs are squashed to ~0 (largest |x| = {format_value(top)}): scaled twice (x / 255 after "
            "ToTensor already did it?), they carry almost no signal.",
            evidence,
            "Scale inputs once (ToTensor already maps pixels to [0, 1]), then standardize.",
            NORMALIZE,
        )
    return None


@rule("data.low_variability", seen_by="live")
def low_variability(s: Signals, t: Thresholds) -> Claim | None:
    """Identical inputs can only get identical outputs."""
    between, std, top = number(s, N.INPUT_BETWEEN_STD), number(s, N.INPUT_STD), number(s, N.INPUT_ABS_MAX)
    if between is None or std is None or top is None:
        return None
    scale = max(std, top)
    if scale > 0 and between > t.min_input_variation * scale:
        return None
    what = "all zero" if scale == 0 else "(nearly) identical across the batch"
    return Claim(
        SPECIFIC,
        f"the inputs are {what}: a dataset that returns one item, a constant image, or a transform that wipes "
        "the content. The model can only learn one output.",
        [
            Evidence(
                "input std across samples / input scale",
                between / scale if scale else 0.0,
                f"> {t.min_input_variation:g}",
            )
        ],
        "Check the dataset's __getitem__ (does it use the index?) and the transforms on a few samples.",
        "x0, _ = dataset[0]; x1, _ = dataset[1]\nassert not torch.equal(x0, x1)",
    )


@rule("data.nonfinite", seen_by="live")
def nonfinite(s: Signals, t: Thresholds) -> Claim | None:
    """One NaN in a batch makes the loss NaN, and one NaN update makes every weight NaN."""
    inputs, targets = s.get(N.INPUT_NONFINITE_STEPS, 0), s.get(N.TARGET_NONFINITE_STEPS, 0)
    if not inputs and not targets:
        return None
    which = "inputs" if inputs else "targets"
    return Claim(
        SEEN_LIVE,
        f"the {which} contain NaN or Inf ({inputs or targets} sampled batches so far): they turn the loss and, "
        "after one update, every weight into NaN.",
        [
            Evidence(f"sampled batches with non-finite {which}", inputs or targets, "0"),
        ],
        "Clean or impute missing values in the dataset (or drop those rows).",
        "x = torch.nan_to_num(x, nan=0.0)  # better: impute with the training mean",
    )


@rule("data.target_scale", seen_by="live")
def target_scale(s: Signals, t: Thresholds) -> Claim | None:
    """A default-init output has unit scale; targets in the thousands need huge weights, so the model settles on
    predicting their mean."""
    if s.get(N.TARGET_KIND) != "float" or s.get(N.TARGET_BINARY_FRACTION) == 1.0:
        return None
    mean, std = number(s, N.TARGET_MEAN), number(s, N.TARGET_STD)
    spread = number(s, N.OUTPUT_BETWEEN_STD)
    if mean is None or std is None or spread is None:
        return None
    scale = max(abs(mean), std)
    if scale < t.max_target_scale or (std > 0 and spread >= t.min_fit_share * std):
        return None
    return Claim(
        MECHANISM_LIVE,
        f"the regression targets have mean {format_value(mean)} and std {format_value(std)} while the outputs "
        f"vary by {format_value(spread)} across samples: far beyond the unit scale the model starts at, it "
        "predicts (about) the mean.",
        [
            Evidence("target mean, std", [mean, std], "~0, ~1 after scaling"),
            Evidence(
                "output std across the batch / target std", spread / std if std else 0.0, f">= {t.min_fit_share:g}"
            ),
        ],
        "Standardize the targets for training and invert it for predictions.",
        "y_mean, y_std = y_train.mean(), y_train.std()\nloss = loss_fn(model(x), (y - y_mean) / y_std)\n"
        "pred = model(x) * y_std + y_mean",
    )


@rule("data.class_imbalance", seen_by="live")
def class_imbalance(s: Signals, t: Thresholds) -> Claim | None:
    """The cheapest way to lower the loss on imbalanced labels is to predict the majority class for everything."""
    if early(s):
        return None  # at init predictions lean on an arbitrary class: a collapse means something once trained
    pred, total = s.get(N.PRED_HIST_WINDOW), s.get(N.TARGET_HIST_TOTAL)
    if not classification(s) or not isinstance(pred, list) or not isinstance(total, list) or len(pred) < 2:
        return None
    n = sum(pred)
    if n < t.min_predictions or sum(total) <= 0:
        return None
    top = max(range(len(pred)), key=pred.__getitem__)
    shares = sorted((v / sum(total) for v in total), reverse=True)
    majority = max(range(len(total)), key=total.__getitem__)
    collapsed = pred[top] / n
    if collapsed < t.collapse_share or top != majority or shares[1] == 0 or shares[0] < t.dominance * shares[1]:
        return None
    return Claim(
        MECHANISM_LIVE,
        f"the model predicts class {top} for {collapsed:.0%} of the last {n:.0f} samples: class {top} holds "
        f"{shares[0]:.0%} of the targets, so predicting it for everything is the cheapest way to lower the loss.",
        [
            Evidence("share of recent predictions on one class", collapsed, f"< {t.collapse_share:g}"),
            Evidence("share of the majority class in the targets", shares[0], "about 1 / classes"),
            Evidence("majority share / next class share", shares[0] / shares[1], f"< {t.dominance:g}"),
        ],
        "Weight the loss by inverse class frequency (or resample the classes).",
        "counts = torch.bincount(train_labels)\nweight = counts.sum() / (len(counts) * counts.float())\n"
        "loss_fn = nn.CrossEntropyLoss(weight=weight)",
    )


@rule("data.unshuffled", seen_by="live")
def unshuffled(s: Signals, t: Thresholds) -> Claim | None:
    """Batches of one class pull the model toward that class in turn: it predicts the latest one."""
    ratio = label_entropy_ratio(s)
    if ratio is None or not batches_sorted(s, t):
        return None
    total, batch = s.get(N.TARGET_ENTROPY_TOTAL), s.get(N.TARGET_BATCH_ENTROPY_RECENT)
    return Claim(
        MECHANISM_LIVE,
        f"each batch holds one or few classes (label entropy {batch:.2f} nats per batch against {total:.2f} over "
        "the run): the data is ordered by class and not shuffled.",
        [
            Evidence(
                "label entropy per batch / over the run",
                ratio,
                f"> {t.unshuffled_entropy_ratio:g} (about 1 when shuffled)",
            )
        ],
        "Shuffle the training data.",
        "loader = DataLoader(dataset, batch_size=64, shuffle=True)",
    )


@rule("data.train_infer_mismatch", seen_by="live")
def train_infer_mismatch(s: Signals, t: Thresholds) -> Claim | None:
    """A model only knows the input distribution it trained on; other preprocessing at evaluation moves it off."""
    if s.get(N.EVAL_INPUT_CAPTURES, 0) < t.min_eval_captures:
        return None
    pairs = [
        (N.INPUT_CHANNEL_MEAN_RECENT, N.INPUT_CHANNEL_STD_RECENT, N.EVAL_INPUT_CHANNEL_MEAN_RECENT,
         N.EVAL_INPUT_CHANNEL_STD_RECENT),
        (N.INPUT_MEAN_RECENT, N.INPUT_STD_RECENT, N.EVAL_INPUT_MEAN_RECENT, N.EVAL_INPUT_STD_RECENT),
    ]  # fmt: skip
    for train_mean, train_std, eval_mean, eval_std in pairs:
        train_m, train_s = s.get(train_mean), s.get(train_std)
        eval_m, eval_s = s.get(eval_mean), s.get(eval_std)
        if train_m is None or eval_m is None or train_s is None or eval_s is None:
            continue
        train_m, train_s, eval_m, eval_s = (
            v if isinstance(v, list) else [v] for v in (train_m, train_s, eval_m, eval_s)
        )
        if len({len(train_m), len(eval_m), len(train_s), len(eval_s)}) != 1:
            continue
        # the median over channels: all channels move when a normalization is missing, and a few rare-valued
        # features of tabular data cannot raise a false alarm; pooled stds keep near-constant features calm
        shift = statistics.median(
            abs(e - t) / math.sqrt((es**2 + ts**2) / 2) if es > 0 or ts > 0 else 0.0
            for e, t, es, ts in zip(eval_m, train_m, eval_s, train_s, strict=True)
        )
        spread = statistics.median(
            abs(math.log(es / ts)) if es > 0 and ts > 0 else 0.0 for es, ts in zip(eval_s, train_s, strict=True)
        )
        if not finite(shift) or not finite(spread):
            return None
        if shift < t.max_eval_shift and spread < math.log(t.max_eval_std_ratio):
            return None
        return Claim(
            LIKELY,
            f"evaluation inputs differ from training inputs: their mean is {shift:.1f} stds away and "
            f"their std {math.exp(spread):.1f}x off. The evaluation transform lacks (or repeats) a normalization "
            "step the training transform has.",
            [
                Evidence("|eval mean - train mean| / pooled std (median channel)", shift, f"< {t.max_eval_shift:g}"),
                Evidence(
                    "eval std / train std (median channel, as a factor)",
                    math.exp(spread),
                    f"< {t.max_eval_std_ratio:g}",
                ),
            ],
            "Use the same preprocessing (resize, scaling, Normalize, channel order) for evaluation.",
            "eval_transform = transforms.Compose([transforms.ToTensor(), " + NORMALIZE.split("  #")[0] + "])",
        )
    return None
