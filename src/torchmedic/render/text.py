"""The report as text: plain for logs and `str(report)`, rich for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchmedic.finding import Finding

if TYPE_CHECKING:
    from rich.console import Console

    from torchmedic.report import Report


def _finding_lines(index: int, f: Finding) -> list[str]:
    lines = [f"{index}. {f.cause}  (confidence {f.confidence:.2f})", f"   {f.summary}"]
    if f.verification is not None:
        lines.append(f"   verified: {f.verification}")
    for e in f.evidence:
        lines.append(f"   - {e}")
    if f.fix.advice:
        lines.append(f"   fix: {f.fix.advice}")
    if f.fix.code:
        lines.extend("       " + line for line in f.fix.code.splitlines())
    return lines


def plain(report: Report) -> str:
    head = "healthy: no finding" if report.healthy else f"{len(report.findings)} finding(s), most likely first:"
    lines = [f"torchmedic diagnosis ({report.task}, {report.elapsed_s:.1f} s): {head}"]
    for i, f in enumerate(report.findings, 1):
        lines.extend(_finding_lines(i, f))
    lines.extend(f"note: {n}" for n in report.notes)
    lines.extend(f"skipped: {s}" for s in report.skipped)
    return "\n".join(lines)


def render(report: Report, console: Console, *, limit: int | None = None) -> None:
    """Print the report with colour and panels (only the first `limit` findings when given)."""
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    if report.healthy:
        console.print(Panel(Text(f"Healthy: no finding ({report.task}, {report.elapsed_s:.1f} s)", style="bold green")))
    shown = report.findings if limit is None else report.findings[:limit]
    for i, f in enumerate(shown, 1):
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("evidence")
        table.add_column("value", justify="right")
        table.add_column("healthy")
        for e in f.evidence:
            from torchmedic.finding import format_value

            table.add_row(e.name + (f" [dim]({e.scope})[/dim]" if e.scope else ""), format_value(e.value), e.healthy)
        parts: list = [Text(f.summary)]
        if f.verification is not None:
            style = {"gone": "green", "fading": "yellow"}.get(f.verification.verdict, "red")
            parts.append(Text(f"verified: {f.verification}", style=style))
        parts.append(table)
        if f.fix.advice:
            parts.append(Text(f"fix: {f.fix.advice}", style="bold"))
        if f.fix.code:
            parts.append(Syntax(f.fix.code, "python", theme="ansi_dark", background_color="default"))
        from rich.console import Group

        title = f"{i}. {f.cause}  confidence {f.confidence:.2f}"
        console.print(Panel(Group(*parts), title=title, title_align="left", border_style="red" if i == 1 else "yellow"))
    if len(shown) < len(report.findings):
        rest = ", ".join(f"{f.cause} {f.confidence:.2f}" for f in report.findings[len(shown) :])
        console.print(f"[dim]also: {rest}[/dim]")
    for n in report.notes:
        console.print(f"[dim]note: {n}[/dim]")
    for s in report.skipped:
        console.print(f"[dim]skipped: {s}[/dim]")
