"""Live rules for the optimizer: gradients that pile up, steps that change nothing, weights decayed to zero."""

from __future__ import annotations

import itertools

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.fixes.optim import decay_line
from torchmedic.rules.live.common import LIKELY, MECHANISM_LIVE, SEEN_LIVE, SPECIFIC, names, number
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

LOOP = "optimizer.zero_grad()\nloss = loss_fn(model(x), y)\nloss.backward()\noptimizer.step()"


@rule("optim.missing_zero_grad", seen_by="live")
def missing_zero_grad(s: Signals, t: Thresholds) -> Claim | None:
    """Backward adds to `.grad`; without zero_grad() the gradient of every earlier step is still there."""
    stale = number(s, N.GRAD_STALE_MIN)
    if s.get(N.GRAD_CARRIED_OVER) is False or stale is None or stale <= 0:
        return None
    evidence = [
        Evidence(
            "largest gradient entry already in .grad when backward ran (every backward of the step)",
            stale,
            "0: zero_grad() empties .grad between steps",
        )
    ]
    now, first = number(s, N.GRAD_NORM), number(s, N.GRAD_NORM_FIRST)
    if now is not None and first:
        evidence.append(
            Evidence(
                "gradient norm now / at the first sampled step",
                now / first,
                "~1 or falling; it grows when gradients pile up",
            )
        )
    return Claim(
        SEEN_LIVE,
        "gradients are never cleared: each backward() adds to the gradients of all earlier steps, so every update "
        "applies their running sum (like momentum 1) and overshoots.",
        evidence,
        "Call optimizer.zero_grad() once per step, before backward() (or right after step()).",
        LOOP,
    )


@rule("optim.not_updating", seen_by="live")
def not_updating(s: Signals, t: Thresholds) -> Claim | None:
    """The optimizer's step() cannot change the model: wrong parameters, no gradient when it runs, or no step at
    all (backward fills .grad, and nothing ever applies it)."""
    unstepped = s.get(N.MONITOR_UNSTEPPED_FORWARDS)
    if unstepped is not None:
        return _never_steps(s, t, int(unstepped))
    foreign, unheld = s.get(N.OPTIM_FOREIGN, 0), s.get(N.OPTIM_UNHELD, 0)
    params, without = s.get(N.GRAD_PARAMS, 0), s.get(N.GRAD_NONE, 0)
    if foreign and unheld:
        missing = s.get(N.OPTIM_UNHELD_NAMES, [])
        return Claim(
            SEEN_LIVE,
            f"the optimizer holds {foreign} tensors that are not this model's and never get a gradient, while "
            f"{unheld} parameters of the model get gradients but are in no optimizer ({names(missing)}): the "
            "optimizer was built before the model (or a layer of it) was replaced.",
            [
                Evidence("optimizer tensors that are not the model's (no gradient)", foreign, "0", "optimizer"),
                Evidence("model parameters with a gradient but not in the optimizer", unheld, "0"),
            ],
            "Build the optimizer after the model is final (after replacing layers, loading, moving).",
            "model.fc = nn.Linear(512, num_classes)\noptimizer = torch.optim.SGD(model.parameters(), lr=0.01)",
        )
    if params and without == params:
        return Claim(
            SEEN_LIVE,
            f"none of the {params} parameters in the optimizer has a gradient when step() runs, so step() does "
            "nothing: zero_grad() between backward() and step(), or the loss is detached from the model.",
            [Evidence("optimizer parameters without .grad at step()", without, "0")],
            "Clear gradients before backward(), not between backward() and step(); keep the loss attached.",
            LOOP,
        )
    grad, moved = number(s, N.GRAD_NORM), number(s, N.UPDATE_NORM)
    if grad == 0 and moved == 0 and (number(s, N.OUTPUT_BETWEEN_STD) or 0) > 0:
        return Claim(
            SPECIFIC,
            "every gradient is exactly zero when step() runs and the step leaves every weight as it was: "
            "zero_grad(set_to_none=False) between backward() and step()?",
            [Evidence("gradient norm at step()", grad, "> 0"), Evidence("weight change of the step", moved, "> 0")],
            "Clear gradients before backward(), not between backward() and step().",
            LOOP,
        )
    return None


def _never_steps(s: Signals, t: Thresholds, unstepped: int) -> Claim | None:
    """Forwards whose backward left gradients in .grad, and no step of the watched optimizer after them."""
    backwards = s.get(N.GRAD_BACKWARDS, 0)
    if unstepped < t.max_unstepped_forwards or not backwards:
        return None  # no backward either: an evaluation or feature extraction with gradients on, not training
    foreign, steps = s.get(N.MONITOR_FOREIGN_STEPS, 0), s.get(N.MONITOR_STEP, 0)
    since = "since the last optimizer step" if steps else "and no optimizer step yet"
    evidence = [
        Evidence("training forwards since the optimizer last stepped", unstepped, "1 (a few when accumulating)"),
        Evidence("backward passes through the model among the latest of them", backwards, "each followed by a step"),
    ]
    skipped, scale = s.get(N.MONITOR_SKIPPED_STEPS, 0), s.get(N.MONITOR_LOSS_SCALE)
    if skipped and 2 * skipped >= backwards:
        return _overflow(unstepped, skipped, scale, evidence)
    if foreign:
        evidence.append(Evidence("steps of optimizers holding none of the model's parameters", foreign, "0"))
        how = (f"an optimizer stepped {foreign} times meanwhile, but it holds none of this model's parameters: it "
               "was built over another model (or over a copy made before training)")  # fmt: skip
    else:
        how = "optimizer.step() is never called (or is called on a branch the loop never reaches)"
    return Claim(
        SEEN_LIVE,
        f"{unstepped} training forwards with backward {since}: the gradients fill .grad and nothing applies them, "
        f"so the weights never change; {how}.",
        evidence,
        "Call optimizer.step() after loss.backward(), with an optimizer built over this model's parameters.",
        "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n" + LOOP,
    )


@rule("optim.over_regularized", seen_by="live")
def over_regularized(s: Signals, t: Thresholds) -> Claim | None:
    """Weight decay shrinks every weight by lr * wd per step; dropout near 1 leaves only noise."""
    p = number(s, N.MODE_MAX_DROPOUT) or 0.0
    if p >= t.max_dropout and s.get(N.MODE_TRAINING) is not False:
        return Claim(
            LIKELY,
            f"dropout with p={p:g} zeroes {p:.0%} of the activations on every training step: the rest is noise.",
            [Evidence("largest dropout probability", p, f"< {t.max_dropout:g} (usually 0.1-0.5)")],
            "Lower the dropout probability (p is the share dropped, not kept).",
            "nn.Dropout(p=0.2)",
        )
    decay = number(s, N.OPTIM_WEIGHT_DECAY) or 0.0
    now, first = number(s, N.WEIGHT_NORM), number(s, N.WEIGHT_NORM_FIRST)
    series = s.get(N.WEIGHT_NORM_SERIES, [])
    spread, spread_first = number(s, N.OUTPUT_BETWEEN_STD), number(s, N.OUTPUT_BETWEEN_STD_FIRST)
    if decay <= 0 or not now or not first or spread is None or not spread_first or len(series) < 2:
        return None
    shrinking = all(b < a for a, b in itertools.pairwise(series))
    if now > t.min_run_weight_kept * first or not shrinking or spread > t.output_collapse * spread_first:
        return None
    return Claim(
        MECHANISM_LIVE,
        f"weight decay {decay:g} shrinks the weights step after step: their norm fell to {now / first:.0%} of its "
        f"start and the output now varies {spread / spread_first:.1%} as much across samples as at the start.",
        [
            Evidence("weight norm now / at the start", now / first, f"> {t.min_run_weight_kept:g}"),
            Evidence("output spread now / at the start", spread / spread_first, f"> {t.output_collapse:g}"),
            Evidence("weight_decay", decay, "1e-4 to 1e-2 (SGD), ~1e-2 (AdamW)"),
        ],
        "Lower weight_decay by 10-100x.",
        decay_line(s.get(N.OPTIM_CLASS)),
    )


def _overflow(unstepped: int, skipped: int, scale: float | None, evidence: list[Evidence]) -> Claim:
    """A GradScaler that skips every step: the gradients are inf or NaN at any loss scale, so the overflow is in
    the computation (a float16 activation or loss), not in the scaling."""
    at = f" down to {scale:.3g}" if scale is not None else ""
    return Claim(
        SEEN_LIVE,
        f"the GradScaler skipped {skipped} steps in a row ({unstepped} training forwards without an update): the "
        f"gradients held inf or NaN at every loss scale{at}, so the overflow is in forward or the loss, in float16, "
        "and the weights never change.",
        [
            *evidence,
            Evidence("steps the GradScaler skipped (inf/NaN gradients)", skipped, "a few at the start"),
            Evidence("loss scale at the latest skip", scale, "about 2**16, steady"),
        ],
        "Find the op that overflows in float16 (large raw inputs, exp, a sum over many values) and keep it in "
        "float32, or autocast to bfloat16; a loss that is NaN itself points to log(0) or 0/0.",
        "with torch.autocast(device_type, dtype=torch.bfloat16):  # float16's range ends at 65504\n"
        "    loss = loss_fn(model(x).float(), y)",
    )
