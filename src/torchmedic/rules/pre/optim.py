"""Rules for the optimizer: parameters that never change, and regularization that shrinks everything to zero."""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.fixes.optim import heavy_decay
from torchmedic.rules.pre.common import MECHANISM, SEEN, confirm, fmt, stuck, symptom_evidence
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds
from torchmedic.verdict import Verdicts

GRAPH_CUT = 0.95  # the loss does not require grad: nothing reaches the parameters
BLOCKED = 0.8  # most held parameters got no gradient and the model does not learn ...
BLOCKED_LEARNING = 0.55  # ... or they got none while it learns a little (a cut before a trainable head)
UNHELD = 0.6  # most trainable parameters are not in the optimizer and the model does not learn
UNREGISTERED = 0.85  # forward uses parameters that model.parameters() does not list: no optimizer can hold them
NOTHING_CHANGED = 0.85  # gradients arrive yet no parameter moved in a whole trial
MOST = 0.5  # a share of the parameters that makes "the model does not train" the likely reading


def _layers(names: list[str]) -> list[str]:
    """Module names of parameter names, first appearance order."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name.rsplit(".", 1)[0] if "." in name else "", None)
    return list(seen)


def _listed(names: list[str]) -> str:
    layers = _layers(names)
    return ", ".join(layers[:4]) + ("..." if len(layers) > 4 else "")


@rule("optim.not_updating")
def not_updating(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """A parameter the optimizer does not hold, or one no gradient reaches, never changes: a frozen model, an
    optimizer built for another model, a graph cut by .detach() or .item(), layers kept in a Python list (forward
    uses them, model.parameters() does not list them)."""
    if not s.has(N.OPTIM_HELD):
        return None  # the optimizer was not looked at
    held, foreign = s.get(N.OPTIM_HELD, []), s.get(N.OPTIM_FOREIGN, 0)
    frozen, trainable = s.get(N.MODEL_FROZEN, []), s.get(N.MODEL_TRAINABLE_PARAMS, 1)
    unheld = s.get(N.OPTIM_UNHELD_TRAINABLE, [])
    missing = s.get(N.GRAD_MISSING, [])
    unregistered = s.get(N.MODEL_UNREGISTERED) or []
    check = v.get("optim.not_updating")
    evidence = [
        Evidence("parameters held by the optimizer", len(held), "all trainable ones"),
        Evidence("tensors in the optimizer that are not the model's", foreign, "0"),
        Evidence("frozen parameters (requires_grad=False)", len(frozen), "the ones you froze on purpose"),
    ]
    if trainable == 0:
        return Claim(
            SEEN,
            f"every parameter of the model has requires_grad=False ({len(frozen)} tensors): nothing can train.",
            evidence,
            "Unfreeze what should train (a freezing loop that ran over every parameter?).",
        )
    if unregistered:
        count = s.get(N.MODEL_UNREGISTERED_PARAMS, 0)
        return Claim(
            confirm(UNREGISTERED, check, structural=True),
            f"forward uses {count} parameter tensors that model.parameters() does not list, in "
            f"{', '.join(unregistered[:4])}: layers kept in a plain Python list or dict are not registered, so the "
            "optimizer never holds them and they keep their random initial weights.",
            [*evidence, Evidence("unregistered layers used in forward", unregistered, "none")] + symptom_evidence(v, t),
            "Keep layers in nn.ModuleList / nn.ModuleDict (or assign each as an attribute) so that model.parameters() "
            "lists them, then build the optimizer.",
            verification=check,
        )
    if not held:
        what = (
            (
                f"holds {foreign} tensors, none of them this model's: it was built for another model instance "
                "(or before the model or a layer was replaced)"
            )
            if foreign
            else "holds none of the model's parameters"
        )
        return Claim(
            SEEN,
            f"the optimizer {what}, so step() never changes the model.",
            evidence + symptom_evidence(v, t),
            "Build the optimizer from the model you train, after every change to it.",
            verification=check,
        )
    if s.get(N.LOSS_REQUIRES_GRAD_GRAPH) is False or s.get(N.TRIAL_ERROR):
        return Claim(
            GRAPH_CUT,
            "the loss does not depend on the parameters through autograd: the graph is cut (a .detach(), .item(), "
            ".numpy() round trip, .data or torch.no_grad() between the parameters and the loss).",
            evidence + [Evidence("loss requires grad", False, "True")],
            "Keep the computation from the parameters to the loss in torch, without detaching.",
        )
    blocked = [n for n in missing if n in held]
    if blocked and len(blocked) / max(1, len(held)) >= MOST:
        return Claim(
            confirm(BLOCKED if stuck(v) else BLOCKED_LEARNING, check),
            f"{len(blocked)} of the {len(held)} parameters the optimizer holds get no gradient ({_listed(blocked)}): "
            "the graph is cut after them by a .detach(), .data, a numpy round trip or torch.no_grad() in forward.",
            evidence + [Evidence("held parameters without gradient", len(blocked), "0")] + symptom_evidence(v, t),
            "Remove the detach in forward (or freeze those layers explicitly with requires_grad_(False) if that is "
            "the intent).",
            verification=check,
        )
    if unheld and len(unheld) / max(1, len(unheld) + len(held)) >= MOST and stuck(v):
        return Claim(
            confirm(UNHELD, check),
            f"{len(unheld)} trainable parameters ({_listed(unheld)}) are not in the optimizer, so they never change "
            "although requires_grad=True.",
            evidence
            + [Evidence("trainable parameters not in the optimizer", len(unheld), "0")]
            + symptom_evidence(v, t),
            "Give the optimizer every parameter that should train (or freeze the others explicitly).",
            verification=check,
        )
    grads = sum(g for g in s.scoped(N.GRAD_NORM).values() if g == g)
    if s.get(N.TRIAL_CHANGED_SHARE, 1.0) == 0.0 and grads > 0 and not s.get(N.TRIAL_DIVERGED):
        return Claim(
            NOTHING_CHANGED,
            f"no parameter changed during {s.get(N.TRIAL_STEPS, 0)} optimizer steps.",
            evidence + symptom_evidence(v, t),
            "Check that gradients reach the parameters and that optimizer.step() runs.",
        )
    return None


@rule("optim.over_regularized")
def over_regularized(s: Signals, t: Thresholds, v: Verdicts) -> Claim | None:
    """Dropout that keeps a few percent of the units, or weight decay that shrinks every weight faster than the
    gradient restores it, drives the output toward a constant."""
    dropout = {k: p for k, p in (s.get(N.MODEL_DROPOUT) or {}).items() if p >= t.max_dropout}
    lr, decay = s.get(N.OPTIM_LR, 0.0) or 0.0, s.get(N.OPTIM_WEIGHT_DECAY, 0.0) or 0.0
    shrink = s.get(N.WEIGHT_SHRINK_MEDIAN)
    heavy = heavy_decay(s, t, lr, decay)
    if not dropout and not heavy:
        return None
    check = v.get("optim.over_regularized")
    if not stuck(v) and not (check and check.passed):
        return None
    evidence = [Evidence("dropout p", p, f"< {t.max_dropout:g}", k) for k, p in dropout.items()]
    if decay:
        evidence.append(Evidence("lr * weight_decay (shrink per step)", lr * decay, f"< {t.max_decay_per_step:g}"))
    if shrink is not None:
        evidence.append(Evidence(f"weight norm after {s.get(N.TRIAL_STEPS, 0)} steps / before", shrink, "~1"))
    parts = []
    if dropout:
        name = next(iter(dropout))
        parts.append(f"dropout p={fmt(dropout[name])} in {name or 'forward'} drops most units")
    if heavy:
        parts.append(
            f"weight_decay={fmt(decay)} at lr={fmt(lr)} shrinks the weights "
            f"{'to ' + format(shrink, '.0%') + ' of their norm ' if shrink is not None else ''}"
            f"in {s.get(N.TRIAL_STEPS, 0)} steps"
        )
    return Claim(
        confirm(MECHANISM, check),
        "; ".join(parts) + ": the output collapses toward a constant.",
        evidence + symptom_evidence(v, t),
        "Use dropout around 0.1-0.5 and weight decay around 1e-4 (SGD/Adam) or 1e-2 (AdamW).",
        verification=check,
    )
