"""The fix registry: one function per cause (or group of causes that share a cure), applied to a `Setup`.

diagnose() applies a cause's fix to a copy and trains it to see whether the symptom goes; repair() applies the fixes
that won and hands the result back; a finding's code is the code its fix writes. A fix returns `Applied` (the setup
with the fix in it, what changed, and the lines for the user's script) or `Refused` (why it cannot apply here).
Fixes run stage by stage: data and loss first, then the model and the optimizer, and the learning rate last, chosen
for the setup as fixed so far.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torchmedic.causes import CAUSES
from torchmedic.setup import Setup

if TYPE_CHECKING:
    from torchmedic.context import Context

log = logging.getLogger(__name__)

STAGES = ("data", "loss", "model", "optim", "lr")


@dataclass(frozen=True)
class Applied:
    setup: Setup
    what: str  # what changed, in the user's terms
    code: str  # the lines for the user's script


@dataclass(frozen=True)
class Refused:
    reason: str
    needless: bool = False  # nothing to change after all (the LR already suits the fixed setup)
    code: str = ""  # the lines the user must change by hand, when the fix knows them


Outcome = Applied | Refused
# (the diagnosis's context, the setup so far (a fresh copy the fix may change), which option: 0 first, then others)
FixFn = Callable[["Context", Setup, int], Outcome]


@dataclass(frozen=True)
class Remedy:
    """The registered fix of one or more causes."""

    name: str
    causes: tuple[str, ...]
    stage: str
    fn: FixFn
    options: int  # how many alternatives the function knows (option 0 first)
    by_hand: bool  # only the user can make this change: the fix says what to change and refuses to apply


FIXES: dict[str, Remedy] = {}  # by cause code


def fix(*causes: str, stage: str, options: int = 1, by_hand: bool = False) -> Callable[[FixFn], FixFn]:
    """Register the decorated function as the fix for `causes`."""
    unknown = [c for c in causes if c not in CAUSES]
    if not causes or unknown or stage not in STAGES:
        raise ValueError(f"unknown cause codes {unknown or causes} or stage {stage!r} (stages: {STAGES})")

    def register(fn: FixFn) -> FixFn:
        for cause in causes:
            if cause in FIXES:
                raise ValueError(f"a fix for {cause} is already registered ({FIXES[cause].name})")
        entry = Remedy(fn.__name__, causes, stage, fn, options, by_hand)
        for cause in causes:
            FIXES[cause] = entry
        return fn

    return register


def apply(ctx: Context, cause: str, setup: Setup, option: int = 0) -> Outcome:
    """The fix of `cause` applied to a copy of `setup` (the setup itself is left as it is)."""
    entry = FIXES.get(cause)
    if entry is None:
        return Refused(f"no fix is registered for {cause}")
    try:
        outcome = entry.fn(ctx, setup.copied(), option)
    except Exception as exc:  # a fix that breaks on an unusual model is refused, never fatal
        log.warning("the fix of %s raised %s: %s", cause, type(exc).__name__, exc)
        return Refused(f"the fix ({entry.name}) raised {type(exc).__name__}: {exc}")
    if isinstance(outcome, Applied):
        return Applied(outcome.setup.but(history=(*setup.history, outcome.what)), outcome.what, outcome.code)
    return outcome
