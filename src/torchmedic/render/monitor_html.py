"""A monitored run's event log as one self-contained HTML page: its findings first, with the step each fired at,
then the loss and the gradient and update scales over the sampled steps with those steps marked."""

from __future__ import annotations

from html import escape
from typing import Any

from torchmedic import signal_names as N
from torchmedic.render.html import (
    NO_PLOTS,
    STYLE,
    document,
    finding_section,
    has_matplotlib,
    number,
    short,
    shown,
    svg_figure,
    table,
)

SERIES = ((N.LOSS, "training loss", False), (N.PRED_HIST, "share of predictions\non the top class", False),
          (N.GRAD_NORM, "gradient norm", True), (N.UPDATE_RATIO_MAX, "largest update / weight", True))  # fmt: skip
MAX_LAYERS = 8  # layers drawn in the per-layer activation panel


def monitor_page(events: list[dict[str, Any]]) -> str:
    """The page for the parsed lines of a `torchmedic-events.jsonl`."""
    start = next((e for e in events if e.get("type") == "start"), {})
    steps = [e for e in events if e.get("type") == "step"]
    findings = [e for e in events if e.get("type") == "finding"]
    ended = any(e.get("type") == "end" for e in events)
    if findings:
        kind, title = "findings", f"{len(findings)} finding{'s' if len(findings) != 1 else ''} during training"
    else:
        kind, title = "healthy", "No finding during training"
    what = f"{start.get('model', 'model')} with {start.get('optimizer') or 'an optimizer found at its first step'}"
    last = steps[-1]["step"] if steps else 0
    status = "" if ended else " (the log has no end: the run was stopped or is still going)"
    parts = [f'<div class="verdict {kind}"><h1>{escape(title)}</h1>']
    parts.append(f"<p>{escape(what)}: {len(steps)} sampled steps up to step {last}{escape(status)}.</p>")
    if findings:
        rows = [[f"<code>{escape(f['cause'])}</code>", str(f.get("step")), f"{f['confidence']:.2f}",
                 escape(f["summary"])] for f in findings]  # fmt: skip
        parts.append(table(["cause", "step", "confidence", "why"], rows, raw=True))
    parts.append("</div>")
    parts.extend(finding_section(i, f) for i, f in enumerate(findings, 1))
    parts.append(_over_steps(steps, findings))
    return document("torchmedic monitor", f'<div class="torchmedic"><style>{STYLE}</style>{"".join(parts)}</div>')


def _series(steps: list[dict[str, Any]], name: str) -> list[tuple[int, float]]:
    """(step, value) of a whole-model signal; for a class histogram, the share of its most frequent class."""
    points = []
    for event in steps:
        value = event.get("signals", {}).get(name)
        if isinstance(value, list):  # a histogram: how concentrated the predictions are
            total = sum(v for v in value if number(v) is not None)
            value = max(value) / total if total else None
        value = number(value)
        if value is not None:
            points.append((int(event["step"]), value))
    return points


def _layer_series(steps: list[dict[str, Any]], name: str) -> dict[str, list[tuple[int, float]]]:
    """(step, value) per layer of a per-layer signal (the event log keeps them under `name/`)."""
    layers: dict[str, list[tuple[int, float]]] = {}
    for event in steps:
        for layer, value in (event.get("signals", {}).get(name + "/") or {}).items():
            if (v := number(value)) is not None:
                layers.setdefault(layer, []).append((int(event["step"]), v))
    return dict(list(layers.items())[:MAX_LAYERS])


def _over_steps(steps: list[dict[str, Any]], findings: list[dict[str, Any]]) -> str:
    panels = [(label, log, {"": points}) for name, label, log in SERIES if (points := _series(steps, name))]
    layers = _layer_series(steps, N.ACT_STD)
    if layers:
        panels.append(("activation std\nper layer", True, layers))
    if not panels:
        return ""
    if not has_matplotlib():
        flat = [(label, points[""]) for label, _, points in panels if "" in points]
        if not flat:
            return NO_PLOTS
        rows = [[str(step), *(shown(dict(points).get(step)) for _, points in flat)] for step, _ in flat[0][1]]
        return "<h2>Over the sampled steps</h2>" + table(["step", *(label for label, _ in flat)], rows) + NO_PLOTS
    marks = [(int(f["step"]), f["cause"]) for f in findings if isinstance(f.get("step"), int)]

    def draw(fig: Any) -> None:
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, log, lines) in zip(axes, panels, strict=True):
            for layer, points in lines.items():
                color = "#1f5f99" if len(lines) == 1 else None
                at, values = [step for step, _ in points], [v for _, v in points]
                ax.plot(at, values, marker=".", ms=3, label=short(layer, 28) or None, color=color)
            ax.set_ylabel(label, fontsize=8)
            if log and all(v > 0 for points in lines.values() for _, v in points):
                ax.set_yscale("log")
            if len(lines) > 1:
                ax.legend(fontsize=6, ncol=2)
            for step, _ in marks:
                ax.axvline(step, color="#c0392b", ls="--", lw=1)
        for step, cause in marks:
            axes[0].annotate(cause, (step, 1.0), xycoords=("data", "axes fraction"), fontsize=7, color="#c0392b",
                             rotation=90, va="top", ha="right")  # fmt: skip
        axes[-1].set_xlabel("optimizer step")

    figure = svg_figure(draw, 1.2 + 1.6 * len(panels))
    return f"<h2>Over the sampled steps</h2><figure>{figure}</figure>"
