"""Rules for causes that live in the data: non-finite values, identical inputs, order, imbalance, scale, labels."""

from __future__ import annotations

from torchmedic.config import DiagnoseConfig
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.rules.pre.common import (
    class_like,
    collapsed,
    confirm,
    diverged,
    fmt,
    learns_once_fixed,
    module_ref,
    stuck,
    symptom_evidence,
    verification,
)
from torchmedic.rules.registry import rule
from torchmedic.signals import Signals


@rule("data.nonfinite")
def nonfinite(s: Signals, c: DiagnoseConfig) -> Finding | None:
    bad_x, bad_y = s.get("input.nonfinite", 0), s.get("target.nonfinite", 0)
    if not bad_x and not bad_y:
        return None
    samples = s.get("data.samples_read", 0)
    where = " and ".join(w for w, n in (("inputs", bad_x), ("targets", bad_y)) if n)
    return Finding(
        "data.nonfinite",
        0.97,
        f"{bad_x + bad_y} NaN/Inf values in the {where} of the first {samples} samples: one of them makes the loss "
        "and every gradient NaN, and the weights with them.",
        [Evidence("non-finite input values", bad_x, "0"), Evidence("non-finite target values", bad_y, "0")],
        Fix(
            "Remove or impute the missing values before training (they usually come from missing data, a log of 0 "
            "or a division by 0 in preprocessing), and check with torch.isfinite in the dataset.",
            "x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)  # or impute with the column mean\n"
            "assert torch.isfinite(x).all() and torch.isfinite(y).all()",
        ),
    )


@rule("data.low_variability")
def low_variability(s: Signals, c: DiagnoseConfig) -> Finding | None:
    dupes, variation = s.get("input.duplicate_share", 0.0), s.get("input.variation")
    flat = variation is not None and variation == variation and variation < c.min_input_variation
    if dupes < c.max_duplicate_share and not flat:
        return None
    if flat:
        prior = 0.95
        what = f"the inputs barely differ between samples (between-sample std / scale = {fmt(variation)})"
    else:
        prior = 0.95 if dupes >= 0.9 else 0.6 + 0.15 * stuck(s, c)
        what = f"{dupes:.0%} of the samples read are exact copies of an earlier sample"
    return Finding(
        "data.low_variability",
        prior,
        f"{what}: the model sees (nearly) the same input every time, so the best it can do is one output.",
        [
            Evidence("duplicate share", dupes, f"< {c.max_duplicate_share:g}"),
            Evidence("between-sample variation of inputs", variation, f">= {c.min_input_variation:g}"),
            *symptom_evidence(s, c),
        ],
        Fix(
            "Check the Dataset's __getitem__ (does it use its index?) and the conversion to tensors (a float image "
            "in [0, 1] cast to uint8 becomes all zeros).",
            "sample_a, sample_b = dataset[0][0], dataset[1][0]\nassert not torch.equal(sample_a, sample_b)",
        ),
    )


@rule("data.unshuffled")
def unshuffled(s: Signals, c: DiagnoseConfig) -> Finding | None:
    per_batch = s.get("target.batch_entropy")
    expected = s.get("target.shuffled_batch_entropy")
    if per_batch is None or not expected or expected < 0.3:
        return None
    ratio = per_batch / expected
    if ratio >= c.unshuffled_entropy_ratio:
        return None
    sequential = s.get("data.sampler") == "sequential"
    prior = 0.85 if sequential else 0.7
    check = verification(s, "data.unshuffled", c)
    return Finding(
        "data.unshuffled",
        confirm(prior, check, structural=True),
        f"each batch holds few classes: label entropy per batch {fmt(per_batch)} vs {fmt(expected)} for shuffled "
        f"batches{' (the loader uses a SequentialSampler: shuffle=False)' if sequential else ''}; every step "
        "pulls the model toward the classes of its batch, and it ends up predicting the last ones.",
        [
            Evidence("label entropy per batch", per_batch, f"~{fmt(expected)} (shuffled)"),
            Evidence("sampler", s.get("data.sampler"), "random"),
            *symptom_evidence(s, c),
        ],
        Fix("Shuffle the training data every epoch.", "loader = DataLoader(train_set, batch_size=..., shuffle=True)"),
        check,
    )


def _label_stats(s: Signals) -> tuple[list[int] | None, float | None, int]:
    hist = s.get("dataset.histogram", s.get("target.histogram"))
    share = s.get("dataset.majority_share", s.get("target.majority_share"))
    present = s.get("dataset.classes_present", s.get("target.classes_present", 0))
    return hist, share, present


@rule("data.class_imbalance")
def class_imbalance(s: Signals, c: DiagnoseConfig) -> Finding | None:
    hist, share, present = _label_stats(s)
    classes = s.get("task.num_classes") or 0
    if hist is None or share is None or not s.get("task.kind", "").endswith(("class", "binary")):
        return None
    majority = max(range(len(hist)), key=lambda i: hist[i])
    if present == 1 and classes >= 2:
        return Finding(
            "data.class_imbalance",
            0.95,
            f"every label read is class {majority} although the model has {classes} outputs: predicting "
            f"{majority} for everything is the perfect answer on this data.",
            [Evidence("classes present in the labels", present, f"{classes}"), Evidence("label histogram", hist, "")],
            Fix(
                "Check the filtering or label mapping that built the dataset: only one class survives it.",
                "print(torch.bincount(torch.as_tensor(train_set.targets)))",
            ),
        )
    if share < c.majority_share:
        return None
    check = verification(s, "data.class_imbalance", c)
    symptom = collapsed(s, c) or stuck(s, c)
    if not symptom and not (check and check.passed):
        return None
    prior = 0.6 + 0.15 * collapsed(s, c)
    onto_majority = collapsed(s, c) and s.get("trial.top_class") == majority  # exactly what the imbalance predicts
    floor = s.get("loss.floor")
    return Finding(
        "data.class_imbalance",
        confirm(prior, check, structural=onto_majority),
        f"class {majority} holds {share:.0%} of the labels; after {s.get('trial.steps', 0)} steps "
        f"{s.get('trial.top_fraction', 0.0):.0%} of held-out predictions are one class: predicting the majority "
        f"already gives the loss of the label entropy ({fmt(floor) if floor is not None else '?'}), a strong trap.",
        [
            Evidence("majority class share", share, f"< {c.majority_share:g}"),
            Evidence("label histogram", hist, ""),
            *symptom_evidence(s, c),
        ],
        Fix(
            "Weight the loss by inverse class frequency or sample the classes evenly (torchmedic.balance gives "
            "both), and judge the model by balanced accuracy, not accuracy.",
            "counts = torch.bincount(targets)\nweights = counts.sum() / (len(counts) * counts.clamp_min(1))\n"
            "loss_fn = nn.CrossEntropyLoss(weight=weights.float())",
        ),
        check,
    )


@rule("data.unnormalized")
def unnormalized(s: Signals, c: DiagnoseConfig) -> Finding | None:
    rms = s.get("input.first_layer_rms")
    if rms is None or rms != rms:  # NaN in the data: fall back to the audit's statistics of the finite values
        rms = s.get("input.rms")
    if rms is None or rms != rms:
        return None
    large, small = rms > c.max_input_scale, 0 < rms < c.min_input_scale
    variation = s.get("input.variation", 1.0)
    if not (large or small) or (small and variation is not None and variation < c.min_input_variation):
        return None
    check = verification(s, "data.unnormalized", c)
    init_ratio = _init_loss_ratio(s)
    symptom = stuck(s, c) or diverged(s) or (init_ratio is not None and init_ratio > c.max_init_loss_ratio)
    extreme = rms > 5 * c.max_input_scale or rms < c.min_input_scale / 5
    untested = not s.has("trial.held_out_gain")  # no trial could run (e.g. NaN data): the scale alone must speak
    if not symptom and not (check and check.passed) and not (untested and extreme):
        return None
    prior = 0.5 if untested and not symptom else 0.6 + 0.1 * extreme
    means, stds = s.get("input.channel_mean", []), s.get("input.channel_std", [])
    kind = "far above" if large else "far below"
    layer = module_ref(s.get("input.first_layer", ""))
    return Finding(
        "data.unnormalized",
        confirm(prior, check),
        f"the inputs reaching {layer} have a root-mean-square of {fmt(rms)}, {kind} the ~1 of standardized data "
        f"(channel means {fmt(means)}, stds {fmt(stds)}): pre-activations and gradients scale with the input, so "
        "a normal learning rate overshoots or the first layer barely moves.",
        [
            Evidence("input RMS at the first layer", rms, f"{c.min_input_scale:g} .. {c.max_input_scale:g}"),
            Evidence("per-channel input mean", means, "~0"),
            Evidence("per-channel input std", stds, "~1"),
            *symptom_evidence(s, c),
        ],
        Fix(
            "Standardize inputs with the training set's per-channel mean and std (torchmedic.dataset_stats "
            "measures them; transforms_for builds the pipeline), once: not twice.",
            "mean, std = x_train.mean(dim=(0, 2, 3)), x_train.std(dim=(0, 2, 3))  # per channel\n"
            "transform = transforms.Normalize(mean.tolist(), std.tolist())  # after ToTensor() scales to [0, 1]",
        ),
        check,
    )


def _init_loss_ratio(s: Signals) -> float | None:
    init, ln_c = s.get("loss.init"), s.get("loss.ln_c")
    return init / ln_c if init is not None and ln_c else None


@rule("data.target_scale")
def target_scale(s: Signals, c: DiagnoseConfig) -> Finding | None:
    if s.get("task.kind") != "regression" or class_like(s, c):
        return None
    mean, std = s.get("target.mean"), s.get("target.std")
    out_std, out_abs = s.get("output.between_std", 0.0), s.get("output.abs_mean", 0.0)
    if mean is None or std is None:
        return None
    reach = max(out_std, out_abs, 1e-3)
    scale = max(abs(mean), std)
    if scale / reach < c.max_target_scale and scale < c.max_target_scale:
        return None
    check = verification(s, "data.target_scale", c)
    if not (stuck(s, c) or diverged(s)) and not (check and check.passed):
        return None
    return Finding(
        "data.target_scale",
        confirm(0.6, check),
        f"targets have mean {fmt(mean)} and std {fmt(std)} while the output at init varies by {fmt(out_std)}: "
        "the squared error is dominated by the offset, its gradient is huge, and the model predicts about the mean.",
        [
            Evidence("target mean", mean, "~0"),
            Evidence("target std", std, "~1"),
            Evidence("output std across the batch at init", out_std, f"within {c.max_target_scale:g}x of the targets'"),
            *symptom_evidence(s, c),
        ],
        Fix(
            "Standardize the targets for training and undo it for predictions.",
            "y_mean, y_std = y_train.mean(), y_train.std()\nloss = loss_fn(model(x), (y - y_mean) / y_std)\n"
            "prediction = model(x) * y_std + y_mean",
        ),
        check,
    )


@rule("data.labels_unrelated")
def labels_unrelated(s: Signals, c: DiagnoseConfig) -> Finding | None:
    real, permuted = s.get("permutation.real_gain"), s.get("permutation.permuted_gain")
    fit = s.get("permutation.fit_gain")
    if real is None or permuted is None or fit is None or fit < c.min_gain:
        return None
    if real - permuted >= c.permutation_margin or real >= c.min_gain or learns_once_fixed(s, c):
        return None
    if (s.get("batch.mixing") or 0.0) >= 1e-3:
        return None  # a model that mixes samples cannot map each input to its label: no test of the labels
    linear = s.get("linear.held_out_gain")
    if linear is not None and linear >= c.min_gain:
        return None  # a linear model predicts held-out labels from the inputs: they carry signal
    return Finding(
        "data.labels_unrelated",
        0.75,
        f"the model fits its training batches (gain {fmt(fit)}) but real labels generalize no better than "
        f"shuffled ones (held-out gain {fmt(real)} vs {fmt(permuted)}): the targets carry no signal the inputs "
        "predict; labels are misaligned with their inputs.",
        [
            Evidence("held-out gain of a linear model on the standardized inputs", linear, f">= {c.min_gain:g}"),
            Evidence("training-batch gain", fit, f">= {c.min_gain:g}"),
            Evidence("held-out gain with real labels", real, f"> permuted + {c.permutation_margin:g}"),
            Evidence("held-out gain with permuted labels", permuted, "~0"),
        ],
        Fix(
            "Check that inputs and labels are shuffled, split and indexed together (one permutation for both), and "
            "that no off-by-one shifts labels against images.",
            "perm = torch.randperm(len(x))\nx, y = x[perm], y[perm]  # the same permutation for both",
        ),
    )
