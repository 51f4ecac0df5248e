"""The cause codes in code are exactly the table of docs/causes.md, with the same 'seen by' columns."""

from __future__ import annotations

import re
from pathlib import Path

from torchmedic.causes import CAUSES

DOC = Path(__file__).resolve().parents[1] / "docs" / "causes.md"


def test_codes_match_the_documented_table() -> None:
    rows = re.findall(r"^\| `([a-z_.]+)` \|.*\| ([a-z, ]+) \|$", DOC.read_text(), flags=re.M)
    documented = {code: frozenset(s.strip() for s in seen.split(",")) for code, seen in rows}
    assert len(documented) >= 27
    assert {code: c.seen_by for code, c in CAUSES.items()} == documented
