"""Live rules for initialization (NaN or Inf weights, scales, symmetry, dead units), judged on the first sampled
steps, and for pretrained weights that did not load."""

from __future__ import annotations

import math

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.fixes.init import RESET_NONFINITE
from torchmedic.rules.live.common import (
    LIKELY,
    MECHANISM_LIVE,
    SEEN_LIVE,
    SPECIFIC,
    early,
    finite,
    inputs_unnormalized,
    largest,
    names,
    nonfinite_at_start,
    number,
)
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

KAIMING = (
    "for m in model.modules():\n    if isinstance(m, (nn.Linear, nn.Conv2d)):\n"
    "        nn.init.kaiming_normal_(m.weight, nonlinearity='relu')\n        nn.init.zeros_(m.bias)"
)


def _depth_ratio(s: Signals) -> tuple[str, str, float] | None:
    """How much activations vary across samples (the signal, not the bias) at the last measured layer over the
    first one, in forward order: (first, last, ratio)."""
    stds = s.scoped(N.ACT_BETWEEN_STD)
    layers = [n for n in s.get(N.ACT_LAYERS, []) if finite(stds.get(n)) and stds[n] > 0]
    if len(layers) < 2:
        return None
    return layers[0], layers[-1], stds[layers[-1]] / stds[layers[0]]


@rule("init.nonfinite", seen_by="live")
def nonfinite(s: Signals, t: Thresholds) -> Claim | None:
    """A weight that is NaN or Inf before any update makes every output through it NaN: no step caused it."""
    bad = nonfinite_at_start(s)
    if not early(s) or not bad:
        return None
    worst = sorted(bad, key=lambda n: -bad[n])
    return Claim(
        SEEN_LIVE,
        f"{int(sum(bad.values()))} NaN/Inf values in the weights before the first update ({names(worst, 3)}): "
        "every output computed through them is NaN, and so are the loss and every gradient.",
        [Evidence("non-finite values before the first update", bad[n], "0", n) for n in worst[:3]],
        "Re-initialize the layers that hold them, or load a checkpoint saved before training diverged.",
        RESET_NONFINITE,
    )


@rule("init.too_small", seen_by="live")
def too_small(s: Signals, t: Thresholds) -> Claim | None:
    """Weights too small multiply the signal by < 1 per layer: the output is (nearly) the bias for every input."""
    depth, spread = _depth_ratio(s), number(s, N.OUTPUT_BETWEEN_STD)
    if not early(s) or depth is None or spread is None:
        return None
    first, last, ratio = depth
    if ratio > t.max_run_std_decay or spread > t.min_output_spread:
        return None
    return Claim(
        MECHANISM_LIVE,
        f"the signal shrinks layer by layer ({first} -> {last}: its between-sample std falls to {ratio:.1e}) and "
        f"the output is almost the same for every sample (between-sample std {spread:.1e}): the weights are too "
        "small for the depth.",
        [
            Evidence("between-sample activation std, last / first layer", ratio, f"> {t.max_run_std_decay:g}"),
            Evidence("output std across the batch", spread, f"> {t.min_output_spread:g}"),
        ],
        "Initialize with Kaiming (ReLU) or Xavier (tanh) scaling instead of a small fixed std.",
        KAIMING,
    )


@rule("init.too_large", seen_by="live")
def too_large(s: Signals, t: Thresholds) -> Claim | None:
    """Weights too large multiply the signal by > 1 per layer: logits explode or tanh/sigmoid saturate."""
    if not early(s) or inputs_unnormalized(s, t):
        return None  # huge inputs, not the weights, would explain huge logits
    depth = _depth_ratio(s)
    saturated = largest(s.scoped(N.ACT_SATURATION))
    first_loss, units = number(s, N.LOSS_FIRST), s.get(N.OUTPUT_UNITS, 0)
    ln_c = math.log(units) if s.get(N.TARGET_KIND) == "index" and units >= 2 else None
    evidence = []
    if depth is not None and depth[2] >= t.max_run_std_growth:
        evidence.append(
            Evidence("between-sample activation std, last / first layer", depth[2], f"< {t.max_run_std_growth:g}")
        )
    if saturated is not None and saturated[1] >= t.saturation:
        evidence.append(
            Evidence("share of saturated tanh/sigmoid outputs", saturated[1], f"< {t.saturation:g}", saturated[0])
        )
    if ln_c is not None and first_loss is not None and first_loss >= t.max_init_loss_ratio * ln_c:
        evidence.append(Evidence("first loss / ln(classes)", first_loss / ln_c, "~1 for an untrained classifier"))
    if not evidence:
        return None
    return Claim(
        LIKELY,
        "the weights are too large at init: the signal grows layer by layer, so logits explode or tanh/sigmoid "
        "units saturate and pass no gradient.",
        evidence,
        "Initialize with Kaiming (ReLU) or Xavier (tanh) scaling instead of a large fixed std.",
        KAIMING,
    )


@rule("init.symmetric", seen_by="live")
def symmetric(s: Signals, t: Thresholds) -> Claim | None:
    """Units that start identical get identical gradients and stay identical: a layer of N units acts as one."""
    if not early(s) or s.get(N.MONITOR_STEP, 0) < 2:
        return None
    same = [k for k, v in s.scoped(N.WEIGHT_ROW_SPREAD).items() if finite(v) and v <= t.max_row_spread]
    if not same:
        return None
    return Claim(
        SPECIFIC,
        f"every unit of {names(same)} has the same weights, also after training steps: identical units get "
        "identical gradients, so the layer can only ever compute one feature (zero or constant init?).",
        [
            Evidence(
                "largest difference between weight rows, relative",
                s.get(N.WEIGHT_ROW_SPREAD, scope=same[0]),
                f"> {t.max_row_spread:g}",
                same[0],
            )
        ],
        "Initialize weights randomly (zeros are fine for biases only).",
        KAIMING,
    )


@rule("init.dead_units", seen_by="live")
def dead_units(s: Signals, t: Thresholds) -> Claim | None:
    """A ReLU unit whose input is negative for every sample outputs 0 and gets no gradient: it never learns."""
    if not early(s):
        return None
    dead = dict(s.scoped(N.ACT_DEAD_FRACTION))
    if (number(s, N.GRAD_OUTPUT_NORM) or 0) > 0:  # with a gradient at the output, a zero row is a dead unit
        dead.update(s.scoped(N.GRAD_DEAD_FRACTION))
    worst = largest(dead)
    if worst is None or worst[1] < t.dead_fraction:
        return None
    layer, share = worst
    return Claim(
        MECHANISM_LIVE,
        f"{share:.0%} of the units of {layer} are dead from the start (zero for every sample, zero gradient): "
        "a large negative bias or a negative-mean init?",
        [Evidence("dead units at the first steps", share, f"< {t.dead_fraction:g}", layer)],
        "Initialize biases at 0 and weights with Kaiming scaling (or use LeakyReLU).",
        KAIMING,
    )


@rule("init.pretrained_not_loaded", seen_by="live")
def pretrained_not_loaded(s: Signals, t: Thresholds) -> Claim | None:
    """load_state_dict(strict=False) skips every key that does not match, silently."""
    share = number(s, N.LOAD_MISSING_FRACTION)
    if share is None or share < t.max_missing_keys:
        return None
    expected, missing, unexpected = s.get(N.LOAD_EXPECTED, 0), s.get(N.LOAD_MISSING, 0), s.get(N.LOAD_UNEXPECTED, 0)
    examples_missing, examples_unexpected = s.get(N.LOAD_MISSING_KEYS, []), s.get(N.LOAD_UNEXPECTED_KEYS, [])
    prefix = _prefix(examples_missing, examples_unexpected)
    where = s.get(N.LOAD_MODULE) or "the model"
    hint = f" The checkpoint's keys carry an extra prefix '{prefix}'." if prefix else ""
    code = (
        f"state = {{k.removeprefix('{prefix}'): v for k, v in state.items()}}\n" if prefix else ""
    ) + "result = model.load_state_dict(state, strict=True)  # fails loudly on a mismatch"
    return Claim(
        SEEN_LIVE,
        f"load_state_dict into {where} matched {expected - missing} of its {expected} keys: {missing} stayed at "
        f"their random init and {unexpected} keys of the checkpoint were ignored.{hint}",
        [
            Evidence("share of the model's keys missing from the load", share, "0 (a few for a replaced head)"),
            Evidence("missing keys, e.g.", examples_missing, "[]"),
            Evidence("unexpected keys, e.g.", examples_unexpected, "[]"),
        ],
        "Match the checkpoint's key names to the model's and load with strict=True.",
        code,
    )


def _prefix(missing: list[str], unexpected: list[str]) -> str:
    """A prefix that turns the unexpected keys into the missing ones ('module.' from DataParallel, ...)."""
    for key in unexpected:
        for target in missing:
            if key.endswith(target) and key != target:
                return key[: len(key) - len(target)]
    return ""
