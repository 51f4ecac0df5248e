"""The repair result as text: plain for logs and `str(result)`, rich for the terminal. Renderers only read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchmedic.finding import format_value
from torchmedic.render import text

if TYPE_CHECKING:
    from rich.console import Console

    from torchmedic.repair.pilot import Pilot
    from torchmedic.repair.result import RepairResult


def headline(result: RepairResult) -> str:
    if result.repaired:
        return "repaired and verified"
    if result.verified:
        return f"verified, {len(result.unresolved)} cause(s) left to fix by hand"
    if result.unresolved:
        return f"not verified: {len(result.unresolved)} cause(s) only you can fix"
    return "not verified: the repaired setup did not learn in the pilot"


def metrics(pilot: Pilot) -> str:
    """The pilot's held-out numbers in one line."""
    if pilot.error:
        return f"raised {pilot.error}"
    parts = [f"loss {format_value(pilot.loss_before)} -> {format_value(pilot.loss_after)}"]
    if pilot.balanced_accuracy is not None and pilot.chance is not None:
        parts.append(f"balanced accuracy {pilot.balanced_accuracy:.2f} (chance {pilot.chance:.2f})")
        if pilot.top_fraction is not None:
            parts.append(f"top class {pilot.top_fraction:.0%}")
    else:
        parts.append(f"gain {format_value(pilot.gain)}")
    return ", ".join(parts)


def _pilots(result: RepairResult) -> list[tuple[str, Pilot]]:
    """The before and after pilots; one row when nothing was changed (the after pilot is the before pilot)."""
    pilots = [("before", result.before)] + ([] if result.after is result.before else [("after", result.after)])
    return [(name, p) for name, p in pilots if p is not None]


def plain(result: RepairResult) -> str:
    lines = [f"torchmedic repair ({result.elapsed_s:.1f} s): {headline(result)}", text.plain(result.report), ""]
    lines.append("changes:" if result.changes else "changes: none")
    for i, c in enumerate(result.changes, 1):
        lines += [f"  {i}. [{', '.join(c.causes)}] {c.what}", f"     why: {c.why}"]
    for name, p in _pilots(result):
        lines.append(f"{name:>6}: {metrics(p)} after {p.steps} steps: {'learned' if p.learned else 'no'} ({p.reason})")
    for u in result.unresolved:
        lines += [f"unresolved {u.cause} (confidence {u.confidence:.2f}): {u.reason}", f"  fix: {u.advice}"]
    if len(result.attempts) > 1:
        lines += [f"attempt '{a.label}': {'learned' if a.pilot.learned else 'no'} ({a.pilot.reason})"
                  for a in result.attempts]  # fmt: skip
    if result.script:
        lines += ["lines to change in your script:", *("  " + line for line in result.script.splitlines())]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def render(result: RepairResult, console: Console) -> None:
    """Print the diagnosis, the changes, before/after metrics, what is left, and the lines to change."""
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    text.render(result.report, console)
    if result.changes:
        changes = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        changes.add_column("cause")
        changes.add_column("what changed (on copies)")
        for c in result.changes:
            changes.add_row(", ".join(c.causes), c.what)
        console.print(Panel(changes, title="changes", title_align="left", border_style="cyan"))
    pilots = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("pilot", "steps", "held-out metrics", "learned", "why"):
        pilots.add_column(column)
    for name, p in _pilots(result):
        pilots.add_row(name, str(p.steps), metrics(p), "[green]yes[/green]" if p.learned else "[red]no[/red]", p.reason)
    for a in (a for a in result.attempts if a.pilot is not result.after):
        learned = "yes" if a.pilot.learned else "no"
        pilots.add_row(f"[dim]{a.label}[/dim]", str(a.pilot.steps), metrics(a.pilot), learned, a.pilot.reason)
    console.print(Panel(pilots, title="verification on held-out samples", title_align="left"))
    for u in result.unresolved:
        body = Text(f"{u.reason}\nfix: {u.advice}")
        console.print(Panel(body, title=f"unresolved: {u.cause}", title_align="left", border_style="red"))
    if result.script:
        code = Syntax(result.script, "python", theme="ansi_dark", background_color="default")
        console.print(Panel(code, title="lines to change in your script", title_align="left", border_style="green"))
    style = "bold green" if result.repaired else ("bold yellow" if result.verified else "bold red")
    console.print(Text(f"{headline(result)} ({result.elapsed_s:.1f} s)", style=style))
    for n in result.notes:
        console.print(f"[dim]note: {n}[/dim]")
