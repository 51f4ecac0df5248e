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
    shown,
    svg_figure,
    table,
)

SERIES = ((N.LOSS, "training loss", False), (N.GRAD_NORM, "gradient norm", True),
          (N.UPDATE_RATIO_MAX, "largest update / weight", True))  # fmt: skip


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
    points = []
    for event in steps:
        value = number(event.get("signals", {}).get(name))
        if value is not None:
            points.append((int(event["step"]), value))
    return points


def _over_steps(steps: list[dict[str, Any]], findings: list[dict[str, Any]]) -> str:
    panels = [(label, log, points) for name, label, log in SERIES if (points := _series(steps, name))]
    if not panels:
        return ""
    if not has_matplotlib():
        rows = [[str(p[0]), *(shown(dict(points).get(p[0])) for _, _, points in panels)] for p in panels[0][2]]
        return "<h2>Over the sampled steps</h2>" + table(["step", *(label for label, _, _ in panels)], rows) + NO_PLOTS
    marks = [(int(f["step"]), f["cause"]) for f in findings if isinstance(f.get("step"), int)]

    def draw(fig: Any) -> None:
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, log, points) in zip(axes, panels, strict=True):
            ax.plot([s for s, _ in points], [v for _, v in points], color="#1f5f99", marker=".", ms=3)
            ax.set_ylabel(label)
            if log and all(v > 0 for _, v in points):
                ax.set_yscale("log")
            for step, _ in marks:
                ax.axvline(step, color="#c0392b", ls="--", lw=1)
        for step, cause in marks:
            axes[0].annotate(cause, (step, 1.0), xycoords=("data", "axes fraction"), fontsize=7, color="#c0392b",
                             rotation=90, va="top", ha="right")  # fmt: skip
        axes[-1].set_xlabel("optimizer step")

    figure = svg_figure(draw, 1.2 + 1.6 * len(panels))
    return f"<h2>Over the sampled steps</h2><figure>{figure}</figure>"
