"""A diagnosis as one self-contained HTML page: the verdict first, then each finding's evidence and fix, what was
tried, and the measurements as plots (SVG inlined from matplotlib when it is installed, tables otherwise). It reads
the report's JSON form, so a saved report renders the same as a live one. Every string is escaped: layer names,
messages and paths come from the user's setup."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from torchmedic import signal_names as N

STYLE = """
.torchmedic { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; max-width: 60rem;
  line-height: 1.45; }
.torchmedic h1 { font-size: 1.5rem; margin: 0 0 .4rem; }
.torchmedic h2 { font-size: 1.15rem; margin: 1.6rem 0 .4rem; }
.torchmedic .verdict { border-left: .4rem solid #888; padding: .6rem 1rem; background: #f5f6f8; }
.torchmedic .verdict.healthy { border-color: #2e8b57; }
.torchmedic .verdict.findings { border-color: #c0392b; }
.torchmedic .verdict.unexplained { border-color: #d68910; }
.torchmedic table { border-collapse: collapse; margin: .4rem 0; font-size: .92rem; }
.torchmedic th, .torchmedic td { border-bottom: 1px solid #dde1e6; padding: .25rem .6rem; text-align: left;
  vertical-align: top; }
.torchmedic th { background: #eef0f3; }
.torchmedic pre { background: #1f2430; color: #e6e6e6; padding: .7rem 1rem; overflow-x: auto; border-radius: 4px; }
.torchmedic .gone { color: #2e8b57; font-weight: 600; }
.torchmedic .stays { color: #c0392b; }
.torchmedic .muted { color: #5f6b7a; font-size: .9rem; }
.torchmedic figure { margin: .8rem 0; }
.torchmedic figure svg { max-width: 100%; height: auto; }
"""
VERDICTS = {"gone": "symptom gone", "fading": "symptom fading", "stays": "symptom stays"}
MAX_LABEL = 28  # characters of a layer name under a bar
Panel = tuple[str, bool, list[tuple[str, str]]]  # title, log scale, (signal, legend) per series of bars
PROPAGATION: list[Panel] = [
    ("output std", False, [(N.ACT_OUT_STD, "at init"), (N.ACT_OUT_STD_AFTER, "after the trial")]),
    ("share of the input that is dead", False, [(N.ACT_IN_DEAD, "at init"), (N.ACT_DEAD_AFTER, "after the trial")]),
]
GRADIENTS: list[Panel] = [
    ("gradient norm", True, [(N.GRAD_NORM, "")]),
    ("update / weight in the trial", True, [(N.UPDATE_RATIO, "")]),
]
NO_PLOTS = '<p class="muted">Install matplotlib (the plot extra) for plots.</p>'


def write(page: str, path: str | os.PathLike[str]) -> None:
    Path(path).write_text(page, encoding="utf-8")


def document(title: str, fragment: str) -> str:
    """A whole HTML document around a fragment."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f'<body style="margin: 1.5rem">{fragment}</body></html>\n'
    )


def diagnosis_page(data: dict[str, Any]) -> str:
    """A whole HTML document for a report's `to_dict()`."""
    return document("torchmedic diagnosis", diagnosis_fragment(data))


def diagnosis_fragment(data: dict[str, Any]) -> str:
    """The report as one <div> with its own style: what a notebook shows and the page's body."""
    signals = Signals(data.get("signals") or [])
    parts = [
        _verdict(data),
        *(finding_section(i, f) for i, f in enumerate(data.get("findings") or [], 1)),
        _tried(data),
        _measurements(data, signals),
        _notes(data),
    ]
    return f'<div class="torchmedic"><style>{STYLE}</style>{"".join(parts)}</div>'


class Signals:
    """The report's signal list read back: the latest value per (name, scope)."""

    def __init__(self, items: Sequence[dict[str, Any]]) -> None:
        self.latest: dict[tuple[str, str], Any] = {}
        for item in items:
            self.latest[(item["name"], item.get("scope", ""))] = item.get("value")

    def get(self, name: str, default: Any = None) -> Any:
        return self.latest.get((name, ""), default)

    def scoped(self, name: str) -> dict[str, float]:
        """Per-layer numbers of `name`, in the order first measured."""
        values = {s: number(v) for (n, s), v in self.latest.items() if n == name and s}
        return {s: v for s, v in values.items() if v is not None}


# ---- sections ---------------------------------------------------------------------------------------------------
def _verdict(data: dict[str, Any]) -> str:
    findings = data.get("findings") or []
    symptom = data.get("symptom") or {}
    if data.get("healthy"):
        kind, title = "healthy", "Healthy: no finding"
    elif not symptom and not findings:
        kind, title = "unexplained", "Not judged: the baseline trial did not run"
    elif data.get("unexplained") and not findings:
        kind, title = "unexplained", "The model does not learn; no cause confirmed"
    else:
        confirmed = "" if not data.get("unexplained") else " (none confirmed by its fix)"
        kind, title = "findings", f"{len(findings)} likely cause{'s' if len(findings) != 1 else ''}{confirmed}"
    text = symptom.get("text")
    lines = [f'<div class="verdict {kind}"><h1>{escape(title)}</h1>']
    lines.append(f"<p><b>Symptom:</b> the model {escape(text)}.</p>" if text else "<p>Symptom: not measured.</p>")
    if findings:
        rows = [
            [
                str(i),
                f"<code>{escape(f['cause'])}</code>",
                f"{f['confidence']:.2f}",
                _verified(f.get("verification")),
                escape(_first_sentence(f["summary"])),
            ]
            for i, f in enumerate(findings, 1)
        ]
        lines.append(table(["#", "cause", "confidence", "fix tried on a copy", "why"], rows, raw=True))
    task, seconds = data.get("task") or "unknown task", data.get("elapsed_s") or 0.0
    lines.append(f'<p class="muted">{escape(str(task))} · diagnosed in {float(seconds):.1f} s</p></div>')
    return "".join(lines)


def finding_section(index: int, f: dict[str, Any]) -> str:
    parts = [f"<h2>{index}. <code>{escape(f['cause'])}</code> · confidence {f['confidence']:.2f}</h2>"]
    parts.append(f"<p>{escape(f['summary'])}</p>")
    check = f.get("verification")
    if check:
        parts.append(f"<p><b>Verified by intervention:</b> {escape(_check_text(check))} {_verified(check)}</p>")
    evidence = f.get("evidence") or []
    if evidence:
        rows = [[e["name"], e.get("scope", ""), shown(e.get("value")), e.get("healthy", "")] for e in evidence]
        parts.append(table(["measured", "where", "value", "healthy"], rows))
    fix = f.get("fix") or {}
    if fix.get("advice"):
        parts.append(f"<p><b>Fix:</b> {escape(fix['advice'])}</p>")
    if fix.get("code"):
        parts.append(f"<pre><code>{escape(fix['code'])}</code></pre>")
    return "".join(parts)


def _tried(data: dict[str, Any]) -> str:
    tried = data.get("tried") or []
    if not tried:
        return ""
    rows = [
        [
            f"<code>{escape(t['cause'])}</code>",
            escape(t["intervention"]),
            f"{shown(t.get('before'))} → {shown(t.get('after'))}",
            _verified(t),
        ]
        for t in tried
    ]
    header = ["cause", "fix applied to a copy", "held-out score", "verdict"]
    return "<h2>What was tried</h2>" + table(header, rows, raw=True)


def _notes(data: dict[str, Any]) -> str:
    items = [f"<li>{escape(n)}</li>" for n in data.get("notes") or []]
    items += [f"<li>skipped: {escape(s)}</li>" for s in data.get("skipped") or []]
    return f'<h2>Notes</h2><ul class="muted">{"".join(items)}</ul>' if items else ""


# ---- measurements -------------------------------------------------------------------------------------------------
def _measurements(data: dict[str, Any], s: Signals) -> str:
    """Each plot as SVG, or its numbers as a table without matplotlib."""
    if not has_matplotlib():
        return "<h2>Measurements</h2>" + _tables(data, s) + NO_PLOTS
    figures = [
        ("Training loss of each trial", _curves_plot(data)),
        ("LR range test", _lr_plot(s)),
        ("Signal propagation per layer", _layers_plot(s, PROPAGATION)),
        ("Gradients and updates per layer", _layers_plot(s, GRADIENTS)),
        ("Predicted classes against targets", _histogram_plot(s)),
        ("Input channels", _channels_plot(s)),
    ]  # fmt: skip
    shown = [f"<figure><figcaption>{escape(title)}</figcaption>{svg}</figure>" for title, svg in figures if svg]
    return "<h2>Measurements</h2>" + "".join(shown) if shown else ""


def _tables(data: dict[str, Any], s: Signals) -> str:
    curves = data.get("curves") or {}
    parts = []
    if curves:
        rows = [[label, str(len(c)), shown(c[0] if c else None), shown(c[-1] if c else None)]
                for label, c in curves.items()]  # fmt: skip
        parts.append(table(["trial", "steps", "first loss", "last loss"], rows))
    layers = {name: s.scoped(name) for name in (N.ACT_OUT_STD, N.ACT_IN_DEAD, N.GRAD_NORM, N.UPDATE_RATIO)}
    names = list(dict.fromkeys(layer for values in layers.values() for layer in values))
    if names:
        rows = [[layer, *(shown(layers[n].get(layer)) for n in layers)] for layer in names]
        parts.append(table(["layer", "output std", "dead share", "gradient norm", "update / weight"], rows))
    return "".join(parts)


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def svg_figure(draw: Callable[[Any], None], height: float = 3.0) -> str:
    """`draw(figure)` rendered to an inline <svg>: text as paths (no user string reaches the markup), no date."""
    import matplotlib
    from matplotlib.figure import Figure

    # a fixed salt for the SVG ids: the same report renders the same page
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "torchmedic", "font.size": 9}):
        fig = Figure(figsize=(7.5, height), layout="constrained")
        draw(fig)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _curves_plot(data: dict[str, Any]) -> str:
    curves = {label: [v for v in c if number(v) is not None] for label, c in (data.get("curves") or {}).items()}
    curves = {label: c for label, c in curves.items() if c}
    if not curves:
        return ""

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        for label, losses in curves.items():
            baseline = label == "baseline"
            ax.plot(range(1, len(losses) + 1), losses, lw=2.2 if baseline else 1.1, label=short(label, 60),
                    color="black" if baseline else None, zorder=3 if baseline else 2)  # fmt: skip
        values = [v for c in curves.values() for v in c if math.isfinite(v)]
        if values and min(values) > 0 and max(values) / min(values) > 30:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=7, loc="best")

    return svg_figure(draw, 3.4)


def _lr_plot(s: Signals) -> str:
    lrs, losses = s.get(N.LR_RANGE_LRS) or [], s.get(N.LR_RANGE_LOSSES) or []
    pairs = [(a, b) for a, b in zip(lrs, losses, strict=False) if number(a) and number(b) is not None]
    if len(pairs) < 2:
        return ""
    suggestion, current = number(s.get(N.LR_RANGE_SUGGESTION)), number(s.get(N.TRIAL_LR))

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        ax.plot([a for a, _ in pairs], [b for _, b in pairs], color="#1f5f99")
        ax.set_xscale("log")
        if suggestion:
            ax.axvline(suggestion, color="#2e8b57", ls="--", label=f"suggested {suggestion:.3g}")
        if current:
            ax.axvline(current, color="#c0392b", ls=":", label=f"your LR {current:.3g}")
        ax.set_xlabel("learning rate (one step each)")
        ax.set_ylabel("smoothed loss")
        if suggestion or current:
            ax.legend(fontsize=7)

    return svg_figure(draw)


def _layers_plot(s: Signals, panels: list[Panel]) -> str:
    """One panel of bars per layer (in forward order) for each (title, log scale, series); series side by side."""
    shown = [(title, log, [(s.scoped(name), legend) for name, legend in series]) for title, log, series in panels]
    shown = [(title, log, [(v, legend) for v, legend in series if v]) for title, log, series in shown]
    shown = [panel for panel in shown if panel[2]]
    if not shown:
        return ""

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, len(shown), squeeze=False)[0]
        for ax, (title, log, series) in zip(axes, shown, strict=True):
            names = list(dict.fromkeys(layer for values, _ in series for layer in values))
            width = 0.8 / len(series)
            for i, (values, legend) in enumerate(series):
                offsets = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
                ax.bar(offsets, [values.get(n, 0.0) for n in names], width=width, label=legend or None)
            ax.set_xticks(range(len(names)), [short(n, MAX_LABEL) for n in names], rotation=60, ha="right")
            ax.set_title(title)
            if log and all(v > 0 for values, _ in series for v in values.values()):
                ax.set_yscale("log")
            if len(series) > 1:
                ax.legend(fontsize=7)

    return svg_figure(draw, 3.6)


def _histogram_plot(s: Signals) -> str:
    pred, target = s.get(N.PRED_HISTOGRAM), s.get(N.TARGET_HISTOGRAM)
    if not isinstance(pred, list) or not isinstance(target, list) or not pred or len(pred) != len(target):
        return ""

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        classes = range(len(pred))
        total_p, total_t = max(sum(pred), 1), max(sum(target), 1)
        ax.bar([c - 0.2 for c in classes], [v / total_t for v in target], width=0.4, label="targets", color="#999")
        ax.bar([c + 0.2 for c in classes], [v / total_p for v in pred], width=0.4, label="predictions", color="#c0392b")
        ax.set_xlabel("class")
        ax.set_ylabel("share")
        ax.legend(fontsize=7)

    return svg_figure(draw)


def _channels_plot(s: Signals) -> str:
    means, stds = s.get(N.INPUT_CHANNEL_MEAN), s.get(N.INPUT_CHANNEL_STD)
    if not isinstance(means, list) or not isinstance(stds, list) or not means or len(means) != len(stds):
        return ""

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        ax.errorbar(range(len(means)), means, yerr=stds, fmt="o", color="#1f5f99", capsize=3)
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xlabel("input channel or feature")
        ax.set_ylabel("mean ± std")

    return svg_figure(draw, 2.6)


# ---- small helpers ----------------------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]], *, raw: bool = False) -> str:
    """A table; cells are escaped unless `raw` (the caller escaped them and added markup)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verified(check: dict[str, Any] | None) -> str:
    if not check:
        return '<span class="muted">not tried</span>'
    verdict = check.get("verdict", "")
    return f'<span class="{escape(verdict)}">{escape(VERDICTS.get(verdict, verdict))}</span>'


def _check_text(check: dict[str, Any]) -> str:
    return f"{check['intervention']}: {check['metric']} {shown(check.get('before'))} → {shown(check.get('after'))}"


def _first_sentence(text: str) -> str:
    """The claim of a finding's summary, before the colon that starts its explanation."""
    end = text.find(": ")
    return text if end < 0 or end > 160 else text[:end] + "."


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(shown(v) for v in value[:8]) + (", …]" if len(value) > 8 else "]")
    return "" if value is None else str(value)


def short(text: str, limit: int) -> str:
    """`text` cut to `limit` characters for a plot label, its `$` escaped so matplotlib does not read it as math."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")
