"""The delivery commands: send, replay, check, fake, demo."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .checks import run_checks
from .cli import _presets_option, main, open_preset, read_settings
from .deliver import Deliverer
from .journal import DeadLetter, Journal, NullJournal
from .model import CompiledPreset
from .ratelimit import TokenBucket
from .runner import StreamStats, read_lines, run_stream
from .settings import Settings
from .transport import RequestsTransport

if TYPE_CHECKING:  # rich is imported where it is used: the offline commands start faster
    from rich.console import Console
    from rich.text import Text

__all__ = ["deliver_stream", "print_summary"]


def _redirects(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep:
            raise click.UsageError(f"--redirect takes FROM=TO, got {pair!r}")
        out[source] = target
    return out


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
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(stderr=True)
    with Live(Text("starting..."), console=console, refresh_per_second=8, transient=False) as live:
        yield lambda stats: live.update(_progress_line(stats))


def deliver_stream(
    preset: CompiledPreset,
    settings: Settings,
    options: dict[str, Any],
    source: Any,
    *,
    concurrency: int,
    dry_run: bool,
    journal_path: Path | str | None,
    dead_letter_path: Path,
    redirects: dict[str, str],
    progress: bool,
) -> StreamStats:
    policy = preset.delivery
    rate = options.get("rate_limit", {})
    bucket = None
    if rate.get("rate", policy.rate):
        bucket = TokenBucket(float(rate.get("rate", policy.rate)), int(rate.get("burst", policy.burst)))
    transport = RequestsTransport(
        policy.connect_timeout, policy.read_timeout, pool_size=concurrency, redirects=redirects
    )
    deliverer = Deliverer(
        preset, settings, transport, dry_run=dry_run, bucket=bucket, max_attempts=options.get("max_attempts")
    )
    journal = Journal(journal_path) if journal_path is not None else NullJournal()
    dead_letter = DeadLetter(dead_letter_path)
    try:
        with _progress(progress) as report:
            return run_stream(
                deliverer,
                read_lines(source),
                journal=journal,
                dead_letter=dead_letter,
                concurrency=concurrency,
                progress=report,
            )
    finally:
        journal.close()
        dead_letter.close()
        transport.close()


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


def _finish(preset: CompiledPreset, stats: StreamStats, summary_json: Path | None) -> None:
    """Write the JSON summary if asked; the exit code says whether anything failed."""
    if summary_json:
        summary_json.write_text(json.dumps({"preset": preset.name, **stats.as_dict()}, indent=2) + "\n")
    if stats.failed:
        raise SystemExit(1)


def _common_send_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True),
            click.option(
                "--redirect",
                "redirect",
                multiple=True,
                metavar="FROM=TO",
                help="Send requests for URL prefix FROM to TO instead (e.g. to a local fake).",
            ),
            click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."),
            click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path)),
        ]
    ):
        func = option(func)
    return func


@main.command()
@click.argument("preset_name", metavar="PRESET")
@click.argument("events", default="-", metavar="[EVENTS.ndjson | -]")
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Render and classify everything; send nothing.")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite journal (default relay-out/PRESET.journal.sqlite).",
)
@click.option(
    "--dead-letter",
    "dead_letter_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where failed events go (default relay-out/PRESET.deadletter.ndjson).",
)
@click.option("--fresh", is_flag=True, help="Forget the journal: deliver events an earlier run already recorded.")
@_common_send_options
@_presets_option
def send(
    preset_name: str,
    events: str,
    settings_path: Path,
    dry_run: bool,
    journal_path: Path | None,
    dead_letter_path: Path | None,
    fresh: bool,
    concurrency: int,
    redirect: tuple[str, ...],
    progress: bool | None,
    summary_json: Path | None,
    presets_root: Path | None,
) -> None:
    """Deliver a stream of NDJSON events; every event ends delivered, dropped or dead-lettered.

    Re-running the same command resumes: events the journal recorded are skipped.
    """
    preset = open_preset(preset_name, presets_root)
    settings, options = read_settings(settings_path, preset)
    journal_path = journal_path or Path("relay-out") / f"{preset.name}.journal.sqlite"
    dead_letter_path = dead_letter_path or Path("relay-out") / f"{preset.name}.deadletter.ndjson"
    if dry_run:
        journal_path = None  # a dry run acknowledges nothing
    elif fresh and journal_path.exists():
        journal_path.unlink()
    show = sys.stderr.isatty() if progress is None else progress
    source = sys.stdin.buffer if events == "-" else open(events, "rb")  # noqa: SIM115 - closed below
    try:
        stats = deliver_stream(
            preset,
            settings,
            options,
            source,
            concurrency=concurrency,
            dry_run=dry_run,
            journal_path=journal_path,
            dead_letter_path=dead_letter_path,
            redirects=_redirects(redirect),
            progress=show,
        )
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    print_summary(
        f"relay send {preset.name}" + (" (dry run)" if dry_run else ""), stats, None if dry_run else dead_letter_path
    )
    _finish(preset, stats, summary_json)


@main.command()
@click.argument("dead_letter", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@_common_send_options
@_presets_option
def replay(
    dead_letter: Path,
    settings_path: Path,
    concurrency: int,
    redirect: tuple[str, ...],
    progress: bool | None,
    summary_json: Path | None,
    presets_root: Path | None,
) -> None:
    """Re-deliver the failed events in DEAD_LETTER; what still fails stays in it."""
    entries = [json.loads(line) for line in dead_letter.read_text(encoding="utf-8").splitlines() if line.strip()]
    unique = {entry["key"]: entry for entry in entries}.values()
    presets = {entry["preset"] for entry in unique}
    if len(presets) > 1:
        raise click.UsageError(f"{dead_letter} mixes presets {sorted(presets)}; replay them separately")
    if not unique:
        click.echo(f"{dead_letter} is empty: nothing to replay")
        return
    preset = open_preset(presets.pop(), presets_root)
    settings, options = read_settings(settings_path, preset)
    lines = "".join(
        (json.dumps(e["event"]) if not isinstance(e["event"], str) else e["event"]) + "\n" for e in unique
    ).encode()
    handle, remaining = tempfile.mkstemp(dir=dead_letter.parent, suffix=".ndjson")
    os.close(handle)
    import io

    stats = deliver_stream(
        preset,
        settings,
        options,
        io.BytesIO(lines),
        concurrency=concurrency,
        dry_run=False,
        journal_path=None,
        dead_letter_path=Path(remaining),
        redirects=_redirects(redirect),
        progress=False if progress is None else progress,
    )
    os.replace(remaining, dead_letter)  # the dead letter now holds only what still fails
    print_summary(f"relay replay {dead_letter}", stats, dead_letter)
    _finish(preset, stats, summary_json)


@main.command()
@click.argument("preset_name", metavar="PRESET")
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--fix", is_flag=True, help="Repair what the preset knows how to (e.g. create missing properties).")
@click.option("--redirect", "redirect", multiple=True, metavar="FROM=TO")
@_presets_option
def check(
    preset_name: str, settings_path: Path, fix: bool, redirect: tuple[str, ...], presets_root: Path | None
) -> None:
    """Preflight: do the credentials, the list and the needed properties work?"""
    preset = open_preset(preset_name, presets_root)
    settings, _ = read_settings(settings_path, preset)
    if not preset.checks:
        click.echo(f"{preset.name} declares no checks")
        return
    transport = RequestsTransport(
        preset.delivery.connect_timeout, preset.delivery.read_timeout, redirects=_redirects(redirect)
    )
    retrying = Deliverer(preset, settings, transport)
    try:
        results = run_checks(preset, settings, transport, fix=fix, send=retrying.exchange)
    finally:
        transport.close()
    for result in results:
        click.echo(f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.description}")
        for fixed in result.fixed:
            click.echo(f"     fixed: {fixed}")
        for problem in result.problems:
            click.echo(f"     {problem}")
    if not all(r.ok for r in results):
        if not fix and any(spec.fix for spec in preset.checks):
            click.echo("(run again with --fix to repair what can be repaired)")
        raise SystemExit(1)


from . import cli_demo  # noqa: E402,F401  (registers `relay fake` and `relay demo`)
