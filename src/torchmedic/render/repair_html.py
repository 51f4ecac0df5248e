"""A `repair()` result as one self-contained HTML page: whether the repaired copy learned, what changed and the
lines for the script, the pilots before and after, then the diagnosis it acted on."""

from __future__ import annotations

from html import escape
from typing import Any

from torchmedic.render.html import (
    STYLE,
    diagnosis_fragment,
    document,
    has_matplotlib,
    number,
    short,
    shown,
    svg_figure,
    table,
)

PILOT_COLUMNS = ["pilot", "steps", "held-out loss before → after", "gain", "balanced accuracy", "learned", "why"]


def repair_page(data: dict[str, Any]) -> str:
    return document("torchmedic repair", repair_fragment(data))


def repair_fragment(data: dict[str, Any]) -> str:
    """The repair as one <div>: what a notebook shows and the page's body."""
    unresolved = data.get("unresolved") or []
    if data.get("repaired"):
        kind, title = "healthy", "Repaired: the repaired copy learns"
    elif data.get("verified"):
        kind, title = "unexplained", "The repaired copy learns, but some causes need your hand"
    else:
        kind, title = "findings", "Not repaired: no remedy tried made the copy learn"
    parts = [f'<div class="verdict {kind}"><h1>{escape(title)}</h1>']
    pilots = [p for p in (data.get("before"), data.get("after")) if p]
    if pilots:
        parts.append(table(PILOT_COLUMNS, [_pilot_row(p) for p in pilots]))
    parts.append(f'<p class="muted">repaired in {float(data.get("elapsed_s") or 0.0):.1f} s</p></div>')
    changes = data.get("changes") or []
    if changes:
        rows = [[", ".join(c["causes"]), c["what"], c["why"]] for c in changes]
        parts.append("<h2>What changed (on copies)</h2>" + table(["cause", "change", "why"], rows))
    if data.get("script"):
        parts.append(f"<h2>Lines for your script</h2><pre><code>{escape(data['script'])}</code></pre>")
    if unresolved:
        rows = [[u["cause"], u["reason"], u["advice"]] for u in unresolved]
        parts.append("<h2>Left for you to change</h2>" + table(["cause", "why not automatic", "what to do"], rows))
    attempts = data.get("attempts") or []
    if attempts:
        parts.append("<h2>Every attempt</h2>" + table(PILOT_COLUMNS, [_pilot_row(a["pilot"]) for a in attempts]))
        parts.append(_attempts_plot(attempts))
    notes = "".join(f"<li>{escape(n)}</li>" for n in data.get("notes") or [])
    if notes:
        parts.append(f'<ul class="muted">{notes}</ul>')
    diagnosis = diagnosis_fragment(data["diagnosis"]) if data.get("diagnosis") else ""
    parts.append(f"<h2>The diagnosis it acted on</h2>{diagnosis}" if diagnosis else "")
    return f'<div class="torchmedic"><style>{STYLE}</style>{"".join(parts)}</div>'


def _pilot_row(p: dict[str, Any]) -> list[str]:
    loss = f"{shown(p.get('loss_before'))} → {shown(p.get('loss_after'))}"
    learned = "yes" if p.get("learned") else "no"
    return [p["label"], str(p.get("steps")), loss, shown(p.get("gain")), shown(p.get("balanced_accuracy")), learned,
            p.get("reason", "")]  # fmt: skip


def _attempts_plot(attempts: list[dict[str, Any]]) -> str:
    """Held-out gain of each attempt's pilot: which remedies made the copy learn."""
    gains = [(a["label"], number(a["pilot"].get("gain"))) for a in attempts]
    scores = [(label, gain) for label, gain in gains if gain is not None]
    if not scores or not has_matplotlib():
        return ""

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        colors = ["#2e8b57" if g > 0 else "#c0392b" for _, g in scores]
        ax.barh(range(len(scores)), [g for _, g in scores], color=colors)
        ax.set_yticks(range(len(scores)), [short(label, 60) for label, _ in scores])
        ax.axvline(0, color="#999", lw=0.8)
        ax.set_xlabel("held-out gain over the best constant after the pilot")
        ax.invert_yaxis()

    return f"<figure>{svg_figure(draw, 0.6 + 0.35 * len(scores))}</figure>"
