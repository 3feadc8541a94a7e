"""How the CLI shows a run: live progress on a terminal, and the summary.

rich is imported where it is used, so the offline commands start faster. Output
that is not a terminal is never wrapped, so commands and paths stay copyable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..delivery.runner import StreamStats

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["console", "print_summary", "progress_display"]


def console(*, stderr: bool = False) -> Console:
    """A rich console that wraps only on a terminal (piped output keeps long lines whole)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(stderr=stderr, soft_wrap=not terminal, width=None if terminal else 240)


def _counts(stats: StreamStats, dry_run: bool) -> str:
    done = stats.rendered if dry_run else stats.delivered
    parts = [
        f"[green]{'rendered' if dry_run else 'sent'}[/green] {done:,}",
        f"[yellow]dropped[/yellow] {stats.dropped:,}",
        f"[red]failed[/red] {stats.failed:,}",
    ]
    if stats.parked:
        parts.append(f"[red]parked[/red] {stats.parked:,}")
    if stats.retrying:
        parts.append(f"[cyan]retrying[/cyan] {stats.retrying:,}")
    if stats.throttled:
        parts.append(f"[cyan]throttled[/cyan] {stats.throttled:,}")
    if stats.resumed:
        parts.append(f"resumed past {stats.resumed:,}")
    return "  ".join(parts)


def _spread(total: int, count: int, largest: int) -> str:
    return f"{total / count:,.0f} avg, {largest:,} max" if count else "0"


def _rate(stats: StreamStats) -> float:
    # Lines a resumed run skips cost nothing: they must not inflate the rate.
    return (stats.events - stats.resumed) / stats.seconds if stats.seconds else 0.0


@contextmanager
def progress_display(enabled: bool, *, dry_run: bool = False) -> Iterator[Callable[[StreamStats], None] | None]:
    """A live display: a bar with percent and ETA when the input's size is known, else a line."""
    if not enabled:
        yield None
        return
    from rich.live import Live
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
    from rich.table import Table
    from rich.text import Text

    bar = Progress(
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console(stderr=True),
    )
    task = bar.add_task("input", total=None, start=True)

    def view(stats: StreamStats) -> RenderableType:
        line = Text.from_markup(
            f"[bold]{stats.events:,} events[/bold] {_rate(stats):,.0f}/s  {_counts(stats, dry_run)}"
        )
        if stats.total_bytes is None:
            return line
        bar.update(task, total=stats.total_bytes, completed=stats.bytes_read)
        grid = Table.grid()
        grid.add_row(bar.get_renderable())
        grid.add_row(line)
        return grid

    with Live(Text("starting..."), console=console(stderr=True), refresh_per_second=8, transient=False) as live:
        yield lambda stats: live.update(view(stats))


def print_summary(
    title: str, stats: StreamStats, dead_letter: Path | None, out: Console | None = None, *, dry_run: bool = False
) -> None:
    from rich.table import Table

    out = out or console()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    rows: list[tuple[str, int]] = [("events", stats.events)]
    rows.append(("rendered (dry run)", stats.rendered) if dry_run else ("delivered", stats.delivered))
    rows += [("dropped", stats.dropped), ("failed", stats.failed)]
    if stats.parked:
        rows.append(("parked behind a failure", stats.parked))
    if stats.skipped:
        rows.append(("skipped (blank, or already journaled)", stats.skipped))
    if stats.earlier_unresolved:
        rows.append(("  still dead-lettered from earlier runs", stats.earlier_unresolved))
    if stats.unfinished:
        rows.append(("unfinished (interrupted)", stats.unfinished))
    rows += [("HTTP requests", stats.requests), ("  of which lookups", stats.lookups)]
    rows += [("  of which retries", stats.retries)]
    if stats.throttled:
        rows.append(("  answered 429 (rate slowed)", stats.throttled))
    for name, value in rows:
        table.add_row(name, f"{value:,}")
    for step, numbers in stats.batches.items():
        table.add_row(f"{'bulk requests built' if dry_run else 'bulk requests'} ({step})", f"{numbers['batches']:,}")
        table.add_row("  events per request", _spread(numbers["items"], numbers["batches"], numbers["max_items"]))
        table.add_row("  bytes per request", _spread(numbers["bytes"], numbers["batches"], numbers["max_bytes"]))
    table.add_row("wall time", f"{stats.seconds:.2f} s")
    out.print(table)
    for reason, count in stats.drop_reasons.most_common():
        out.print(f"  dropped {count:>5}  {reason}", markup=False)
    for failure in stats.failures[:5]:
        hint = f"\n             hint: {failure['hint']}" if failure.get("hint") else ""
        error = str(failure["error"]).removeprefix(f"line {failure['line']}: ")
        out.print(f"  failed line {failure['line']}: {error}{hint}", markup=False, style="red")
    if stats.stopped:
        out.print(f"  the destination stopped: {stats.stopped}", markup=False, style="bold red")
    if stats.unresolved and dead_letter is not None:
        out.print(
            f"  {stats.unresolved:,} events of this input are in {dead_letter}: "
            f"fix the cause, then `relay replay {dead_letter} --settings ...`",
            markup=False,
        )
