"""What repair() did and did not do, as records the renderers and the JSON only read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    """One remedy applied to the copies: what changed, the findings it answers, and the lines for the user's script."""

    causes: tuple[str, ...]
    what: str  # in the user's terms: "model[3] (Softmax) -> nn.Identity()"
    why: str  # the finding's summary (the first one when a remedy answers several)
    code: str  # the lines to change in the user's script

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Unresolved:
    """A finding no automatic remedy can fix here, and exactly what the user must change."""

    cause: str
    confidence: float
    reason: str  # why repair() left it alone
    advice: str  # what to change, from the finding's fix
    code: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
