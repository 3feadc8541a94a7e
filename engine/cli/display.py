"""How the CLI shows a run: a live progress line on a terminal, and the summary table.

rich is imported where it is used, so the offline commands start faster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..delivery.runner import StreamStats

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = ["print_summary", "progress_display"]


def _progress_line(stats: StreamStats) -> Text:
    from rich.text import Text

    rate = stats.events / stats.seconds if stats.seconds else 0.0
    return Text.assemble(
        (f"{stats.events:,} events ", "bold"),
        f"{rate:,.0f}/s  ",
        ("sent ", "green"),
        f"{stats.delivered + stats.rendered:,}  ",
        ("dropped ", "yellow"),
        f"{stats.dropped:,}  ",
        ("failed ", "red"),
        f"{stats.failed:,}  ",
        ("retrying ", "cyan"),
        f"{stats.retrying:,}",
    )


@contextmanager
def progress_display(enabled: bool) -> Iterator[Callable[[StreamStats], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(stderr=True)
    with Live(Text("starting..."), console=console, refresh_per_second=8, transient=False) as live:
        yield lambda stats: live.update(_progress_line(stats))


def print_summary(title: str, stats: StreamStats, dead_letter: Path | None, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    rows = [
        ("events", stats.events),
        ("delivered", stats.delivered),
        ("dropped", stats.dropped),
        ("failed", stats.failed),
        ("HTTP requests", stats.requests),
        ("  of which lookups", stats.lookups),
        ("  of which retries", stats.retries),
    ]
    if stats.rendered:
        rows.insert(2, ("rendered (dry run)", stats.rendered))
    if stats.skipped:
        rows.append(("skipped (already journaled)", stats.skipped))
    for name, value in rows:
        table.add_row(name, f"{value:,}")
    table.add_row("wall time", f"{stats.seconds:.2f} s")
    console.print(table)
    for reason, count in stats.drop_reasons.most_common():
        console.print(f"  dropped {count:>5}  {reason}")
    for failure in stats.failures[:5]:
        hint = f"\n             hint: {failure['hint']}" if failure.get("hint") else ""
        console.print(f"  [red]failed[/red] line {failure['line']}: {failure['error']}{hint}")
    if stats.failed and dead_letter is not None:
        console.print(f"  {stats.failed} failed events are in {dead_letter} (relay replay {dead_letter} ...)")
