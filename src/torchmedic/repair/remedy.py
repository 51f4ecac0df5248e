"""The remedy registry: one function per cause (or group of causes that share a cure), applied to a Draft.

A remedy returns `Applied` (the draft with the fix in it, what changed and the code for the user's script) or
`Refused` (why it cannot apply here). Remedies run stage by stage: data and loss first, then the model and the
optimizer, and the learning rate last, chosen for the setup as repaired so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torchmedic.causes import CAUSES
from torchmedic.finding import Finding
from torchmedic.repair.draft import Draft
from torchmedic.repair.workspace import Workspace

STAGES = ("data", "loss", "model", "optim", "lr")


@dataclass(frozen=True)
class Applied:
    draft: Draft
    what: str  # what changed, in the user's terms
    code: str  # the lines for the user's script


@dataclass(frozen=True)
class Refused:
    reason: str
    needless: bool = False  # nothing to change after all (the LR already suits the repaired setup)


Outcome = Applied | Refused
# (workspace, draft so far, the findings this remedy answers, which option: 0 first, then the alternatives)
RemedyFn = Callable[[Workspace, Draft, list[Finding], int], Outcome]


@dataclass(frozen=True)
class Remedy:
    name: str
    stage: str
    fn: RemedyFn
    options: int  # how many alternatives the function knows (option 0 first)


REMEDIES: dict[str, Remedy] = {}  # by cause code


def remedy(*causes: str, stage: str, options: int = 1) -> Callable[[RemedyFn], RemedyFn]:
    """Register the decorated function as the remedy for `causes`."""
    unknown = [c for c in causes if c not in CAUSES]
    if unknown or stage not in STAGES:
        raise ValueError(f"unknown cause codes {unknown} or stage {stage!r} (stages: {STAGES})")

    def register(fn: RemedyFn) -> RemedyFn:
        for cause in causes:
            if cause in REMEDIES:
                raise ValueError(f"a remedy for {cause} is already registered")
            REMEDIES[cause] = Remedy(fn.__name__, stage, fn, options)
        return fn

    return register
