"""Rules for the optimizer: parameters that never change, and regularization that shrinks everything to zero."""

from __future__ import annotations

from torchmedic.config import DiagnoseConfig
from torchmedic.finding import Evidence, Finding, Fix
from torchmedic.rules.pre.common import confirm, fmt, module_ref, stuck, symptom_evidence, verification
from torchmedic.rules.registry import rule
from torchmedic.signals import Signals

REBUILD = "optimizer = torch.optim.{cls}(model.parameters(), lr={lr:g})  # after the model is final"


def _layers(names: list[str]) -> list[str]:
    """Module names of parameter names, first appearance order."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name.rsplit(".", 1)[0] if "." in name else "", None)
    return list(seen)


@rule("optim.not_updating")
def not_updating(s: Signals, c: DiagnoseConfig) -> Finding | None:
    held, foreign = s.get("optim.held", []), s.get("optim.foreign", 0)
    frozen, trainable = s.get("model.frozen", []), s.get("model.trainable_params", 1)
    unheld = s.get("optim.unheld_trainable", [])
    missing = s.get("grad.missing", [])
    cls, lr = s.get("optim.class", "Adam"), s.get("optim.lr", 1e-3)
    rebuild = REBUILD.format(cls=cls, lr=lr)
    check = verification(s, "optim.not_updating", c)
    evidence = [
        Evidence("parameters held by the optimizer", len(held), "all trainable ones"),
        Evidence("tensors in the optimizer that are not the model's", foreign, "0"),
        Evidence("frozen parameters (requires_grad=False)", len(frozen), "the ones you froze on purpose"),
    ]
    if trainable == 0:
        return Finding(
            "optim.not_updating",
            0.97,
            f"every parameter of the model has requires_grad=False ({len(frozen)} tensors): nothing can train.",
            evidence,
            Fix(
                "Unfreeze what should train (a freezing loop that ran over every parameter?).",
                "for p in model.parameters():\n    p.requires_grad_(True)",
            ),
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
        return Finding(
            "optim.not_updating",
            0.97,
            f"the optimizer {what}, so step() never changes the model.",
            evidence,
            Fix("Build the optimizer from the model you train, after every change to it.", rebuild),
        )
    if s.get("loss.requires_grad_graph") is False or s.get("trial.error"):
        return Finding(
            "optim.not_updating",
            0.95,
            "the loss does not depend on the parameters through autograd: the graph is cut (a .detach(), .item(), "
            ".numpy() round trip, .data or torch.no_grad() between the parameters and the loss).",
            evidence + [Evidence("loss requires grad", False, "True")],
            Fix(
                "Keep the computation from the parameters to the loss in torch, without detaching.",
                "loss = loss_fn(model(x), y)  # no .detach()/.item()/.numpy() in between\nassert loss.requires_grad",
            ),
        )
    blocked = [n for n in missing if n in held]
    share_blocked = len(blocked) / max(1, len(held))
    if blocked and share_blocked >= 0.5:
        layers = _layers(blocked)
        return Finding(
            "optim.not_updating",
            confirm(0.8 if stuck(s, c) else 0.55, check),
            f"{len(blocked)} of the {len(held)} parameters the optimizer holds get no gradient "
            f"({', '.join(layers[:4])}{'...' if len(layers) > 4 else ''}): the graph is cut after them by a "
            ".detach(), .data, a numpy round trip or torch.no_grad() in forward.",
            evidence + [Evidence("held parameters without gradient", len(blocked), "0")] + symptom_evidence(s, c),
            Fix(
                "Remove the detach in forward (or freeze those layers explicitly with requires_grad_(False) if "
                "that is the intent).",
                "x = self.features(x)  # not self.features(x).detach()",
            ),
            check,
        )
    unheld_share = len(unheld) / max(1, len(unheld) + len(held))
    if unheld and unheld_share >= 0.5 and stuck(s, c):
        layers = _layers(unheld)
        return Finding(
            "optim.not_updating",
            confirm(0.6, check),
            f"{len(unheld)} trainable parameters ({', '.join(layers[:4])}{'...' if len(layers) > 4 else ''}) are "
            "not in the optimizer, so they never change although requires_grad=True.",
            evidence
            + [Evidence("trainable parameters not in the optimizer", len(unheld), "0")]
            + symptom_evidence(s, c),
            Fix("Give the optimizer every parameter that should train (or freeze the others explicitly).", rebuild),
            check,
        )
    grads = sum(v for v in s.scoped("grad.norm").values() if v == v)
    if s.get("trial.changed_share", 1.0) == 0.0 and grads > 0 and not s.get("trial.diverged"):
        return Finding(
            "optim.not_updating",
            0.85,
            f"no parameter changed during {s.get('trial.steps', 0)} optimizer steps.",
            evidence + symptom_evidence(s, c),
            Fix("Check that gradients reach the parameters.", rebuild),
        )
    return None


@rule("optim.over_regularized")
def over_regularized(s: Signals, c: DiagnoseConfig) -> Finding | None:
    dropout = {k: v for k, v in (s.get("model.dropout") or {}).items() if v >= c.max_dropout}
    lr, decay = s.get("optim.lr", 0.0) or 0.0, s.get("optim.weight_decay", 0.0) or 0.0
    shrink = s.get("weight.shrink_median")
    per_step = lr * decay
    heavy_decay = decay > 0 and (per_step >= c.max_decay_per_step or (shrink is not None and shrink < 0.8))
    if not dropout and not heavy_decay:
        return None
    check = verification(s, "optim.over_regularized", c)
    if not stuck(s, c) and not (check and check.passed):
        return None
    evidence = [Evidence("dropout p", p, f"< {c.max_dropout:g}", k) for k, p in dropout.items()]
    if decay:
        evidence.append(Evidence("lr * weight_decay (shrink per step)", per_step, f"< {c.max_decay_per_step:g}"))
    if shrink is not None:
        evidence.append(Evidence(f"weight norm after {s.get('trial.steps', 0)} steps / before", shrink, "~1"))
    parts = []
    if dropout:
        name = next(iter(dropout))
        parts.append(f"dropout p={fmt(dropout[name])} in {name or 'forward'} drops most units")
    if heavy_decay:
        parts.append(
            f"weight_decay={fmt(decay)} at lr={fmt(lr)} shrinks the weights "
            f"{'to ' + format(shrink, '.0%') + ' of their norm ' if shrink is not None else ''}"
            f"in {s.get('trial.steps', 0)} steps"
        )
    code = []
    if dropout:
        code.append(f"{module_ref(next(iter(dropout)))}.p = 0.2  # was {fmt(next(iter(dropout.values())))}")
    if heavy_decay:
        code.append(f"optimizer = torch.optim.{s.get('optim.class')}(model.parameters(), lr={lr:g}, weight_decay=1e-4)")
    return Finding(
        "optim.over_regularized",
        confirm(0.6, check),
        "; ".join(parts) + ": the output collapses toward a constant.",
        evidence + symptom_evidence(s, c),
        Fix("Use dropout around 0.1-0.5 and weight decay around 1e-4 (SGD/Adam) or 1e-2 (AdamW).", "\n".join(code)),
        check,
    )
