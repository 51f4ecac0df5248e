"""Fixes in the optimizer: parameters it never updates, and regularization that shrinks everything to zero."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from torchmedic import signal_names as N
from torchmedic.fixes.registry import Applied, Outcome, Refused, fix
from torchmedic.lines import module_ref, optimizer_line
from torchmedic.probes.structure import module_containers
from torchmedic.setup import Setup
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

if TYPE_CHECKING:
    from torchmedic.context import Context

SANE_DROPOUT = 0.1  # what the diagnosis's intervention verified with; 0.1-0.5 is the usual range
SANE_DECAY = 1e-4  # the usual L2 weight decay for SGD and Adam ...
SANE_DECOUPLED_DECAY = 1e-2  # ... and AdamW's default decoupled decay


def _graph_cut(ctx: Context) -> bool:
    """The loss does not reach (most of) the parameters through autograd: a cut inside forward."""
    s = ctx.signals
    held, missing = set(s.get(N.OPTIM_HELD) or []), set(s.get(N.GRAD_MISSING) or [])
    blocked = len(held & missing) / max(1, len(held))
    return s.get(N.LOSS_REQUIRES_GRAD_GRAPH) is False or bool(s.get(N.TRIAL_ERROR)) or blocked >= 0.5


def _register(model: nn.Module) -> list[tuple[str, str]]:
    """Wrap every plain list or dict of layers in nn.ModuleList / nn.ModuleDict, in place, so that their
    parameters are listed; (how the user's code refers to it, the container class) for each."""
    names = {id(m): n for n, m in model.named_modules()}
    done = []
    for owner, attr, container in list(module_containers(model)):
        kind = "ModuleDict" if isinstance(container, dict) else "ModuleList"
        wrapped = nn.ModuleDict(container) if isinstance(container, dict) else nn.ModuleList(container)
        setattr(owner, attr, wrapped)
        ref = module_ref(names.get(id(owner), "")).replace("model", "self", 1)
        done.append((f"{ref}.{attr}", kind))
    return done


@fix("optim.not_updating", stage="optim")
def train_the_model(ctx: Context, setup: Setup, option: int) -> Outcome:
    """An optimizer over the parameters that should train (all of them when every one was frozen)."""
    s = ctx.signals
    inner = setup.inner
    frozen = not any(p.requires_grad for p in inner.parameters())  # then no graph reaches the loss: not a cut
    whats, codes = [], []
    registered = _register(inner) if s.get(N.MODEL_UNREGISTERED) else []
    if registered:
        whats.append(f"layers kept in plain containers registered ({', '.join(ref for ref, _ in registered[:3])})")
        codes += [f"{ref} = nn.{kind}({ref})  # in __init__: a plain container hides its layers from model.parameters()"
                  for ref, kind in registered]  # fmt: skip
    elif not frozen and _graph_cut(ctx):
        return Refused(
            "the graph from the parameters to the loss is cut inside forward (.detach(), .item(), .numpy(), .data "
            "or torch.no_grad()): only a change in your forward can let gradients through",
            code="loss = loss_fn(model(x), y)  # no .detach()/.item()/.numpy() in between\nassert loss.requires_grad",
        )
    if frozen:
        for p in inner.parameters():
            p.requires_grad_(True)
        whats.append("every parameter unfrozen (all had requires_grad=False)")
        codes.append("for p in model.parameters():\n    p.requires_grad_(True)  # or only the layers you mean to train")
    trainable = tuple(n for n, p in inner.named_parameters() if p.requires_grad)
    spec = setup.spec
    unheld = set(trainable) - spec.held
    if unheld:
        spec = spec.over(trainable)
        foreign = s.get(N.OPTIM_FOREIGN)
        other = f"; it held {foreign} tensors of another model" if foreign else ""
        whats.append(f"{spec.name} rebuilt over the model's {len(trainable)} trainable parameters ({len(unheld)} were "
                     f"not in it{other})")  # fmt: skip
        codes.append(optimizer_line(spec, inner) + "  # after the model is final")
    if not whats:
        return Refused("the optimizer already holds every trainable parameter")
    return Applied(setup.but(spec=spec), "; ".join(whats), "\n".join(codes))


def heavy_decay(s: Signals, t: Thresholds, lr: float, decay: float) -> bool:
    """Weight decay that shrinks the weights faster than the gradient can hold them: lr * decay above its limit
    per step, or a fifth of the weight norm gone within the trial."""
    shrink = s.get(N.WEIGHT_SHRINK_MEDIAN)
    shrunk = shrink is not None and shrink < t.min_trial_weight_kept
    return decay > 0 and (lr * decay >= t.max_decay_per_step or shrunk)


def sane_decay(optimizer: str | None, decoupled: bool = False) -> float:
    """The usual weight decay of an optimizer class: decoupled (AdamW) decays more per unit than L2."""
    return SANE_DECOUPLED_DECAY if decoupled or optimizer == "AdamW" else SANE_DECAY


def decay_line(optimizer: str | None) -> str:
    """The fix's line when only the optimizer's class is known (the live monitor)."""
    name = optimizer or "AdamW"
    return f"optimizer = torch.optim.{name}(model.parameters(), lr=..., weight_decay={sane_decay(name):g})"


@fix("optim.over_regularized", stage="optim")
def less_regularization(ctx: Context, setup: Setup, option: int) -> Outcome:
    """Dropout near 1 lowered, weight decay that shrinks the weights every step cut to a usual value."""
    s, t = ctx.signals, ctx.config.thresholds
    whats, codes = [], []
    for name, module in setup.inner.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p >= t.max_dropout:
            whats.append(f"{module_ref(name)}.p {module.p:g} -> {SANE_DROPOUT:g}")
            codes.append(f"{module_ref(name)}.p = {SANE_DROPOUT:g}  # was {module.p:g}: p is the share dropped")
            module.p = SANE_DROPOUT
    skipped = list(setup.skipped_ops)
    for name, ordinal, p, scope in s.get(N.MODEL_FUNCTIONAL_DROPOUT) or []:
        if p >= t.max_dropout and (name, ordinal) not in skipped:
            skipped.append((name, int(ordinal)))
            where = type(setup.inner.get_submodule(scope)).__name__ if scope else type(setup.inner).__name__
            whats.append(f"F.{name}(p={p:g}) in {where}.forward skipped")
            codes.append(f"# in {where}.forward: F.{name}(x, p={SANE_DROPOUT:g}) or none, not p={p:g} (p is the share "
                         "dropped)")  # fmt: skip
    setup = setup.but(skipped_ops=tuple(skipped))
    lr, decay = setup.spec.lr, float(setup.spec.hyper("weight_decay", 0.0) or 0.0)
    spec = setup.spec
    if heavy_decay(s, t, lr, decay):
        sane = sane_decay(setup.spec.name, bool(s.get(N.OPTIM_DECOUPLED)))
        spec = spec.with_hyper(weight_decay=sane)
        whats.append(f"weight_decay {decay:g} -> {sane:g}")
        codes.append(optimizer_line(spec, setup.inner))
    if not whats:
        return Refused("no dropout or weight decay strong enough to lower")
    return Applied(setup.but(spec=spec), "; ".join(whats), "\n".join(codes))
