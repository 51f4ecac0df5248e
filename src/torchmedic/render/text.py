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


def headline(report: Report) -> str:
    """The verdict in one line: the symptom, then healthy, unexplained or how many causes."""
    symptom = f"symptom: the model {report.symptom}" if report.symptom is not None else "symptom: not measured"
    if report.healthy:
        return f"{symptom}. Healthy: no finding."
    if report.symptom is None and not report.findings:
        return f"{symptom}: the baseline trial did not run, so nothing is judged healthy. {_why_unmeasured(report)}"
    if report.unexplained and not report.findings:
        return f"{symptom}. The model does not learn; no cause confirmed."
    unconfirmed = "; none confirmed by its fix" if report.unexplained else ""
    return f"{symptom}. {len(report.findings)} finding(s), most likely first{unconfirmed}:"


def _why_unmeasured(report: Report) -> str:
    if any(line.startswith("baseline_trial: out of budget") for line in report.skipped):
        return f"Pass a larger budget (it ran {report.elapsed_s:.1f} s): budget_s= or --budget."
    return "See the skipped probes below."


def tried_lines(report: Report) -> list[str]:
    """What the differential diagnosis tried, with each verdict: the evidence when no cause is confirmed."""
    return [f"tried for {cause}: {check}" for cause, check in report.tried]


def plain(report: Report) -> str:
    lines = [f"torchmedic diagnosis ({report.task}, {report.elapsed_s:.1f} s)", headline(report)]
    for i, f in enumerate(report.findings, 1):
        lines.extend(_finding_lines(i, f))
    if report.unexplained:
        lines.extend(tried_lines(report))
    lines.extend(f"note: {n}" for n in report.notes)
    lines.extend(f"skipped: {s}" for s in report.skipped)
    return "\n".join(lines)


def render(report: Report, console: Console, *, limit: int | None = None) -> None:
    """Print the report with colour and panels (only the first `limit` findings when given)."""
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    style = "bold green" if report.healthy else "bold red"
    console.print(Panel(Text(f"{headline(report)} ({report.task}, {report.elapsed_s:.1f} s)", style=style)))
    if report.unexplained:
        for line in tried_lines(report):
            console.print(f"[dim]{line}[/dim]")
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
