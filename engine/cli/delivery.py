"""The delivery commands: send, replay and check."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from ..delivery.checks import check_preset
from ..delivery.deadletter import read_dead_letter
from ..delivery.runner import RunControl, StreamStats
from ..delivery.stream import deliver_stream, replay_dead_letter
from ..errors import InputError
from ..preset.model import CompiledPreset
from .common import open_preset, parse_redirects, presets_flag, presets_option, read_settings, redirect_option
from .display import print_summary, progress_display

__all__ = ["check", "replay", "send"]

F = TypeVar("F", bound=Callable[..., Any])


def _finish(preset: CompiledPreset, stats: StreamStats, summary_json: Path | None, stopped_by: list[int]) -> None:
    """Write the JSON summary if asked; the exit code says what is left to do.

    130 or 143 when a signal stopped the run (rerun the command to resume); 1 while any
    event of this input is unresolved (failed or parked, in this run or an earlier one).
    """
    if summary_json:
        summary_json.write_text(json.dumps({"preset": preset.name, **stats.as_dict()}, indent=2) + "\n")
    if stats.interrupted:
        click.echo(
            f"stopped by a signal: {stats.unfinished:,} events unfinished. Run the same command again to resume:"
            f" what was recorded is skipped, nothing recorded is sent twice.\n  {_command_line()}",
            err=True,
        )
        raise SystemExit(128 + (stopped_by[0] if stopped_by else signal.SIGINT))
    if stats.stopped:
        click.echo(f"error: the destination stopped sending: {stats.stopped}", err=True)
    if stats.unresolved:
        raise SystemExit(1)


def _command_line() -> str:
    program = Path(sys.argv[0]).name
    args = sys.argv[1:] if program in ("relay", "__main__.py") else ["send", "..."]
    return shlex.join(["relay", *args])


@contextmanager
def _stop_on_signals(control: RunControl) -> Iterator[list[int]]:
    """SIGINT and SIGTERM stop the run gracefully; a second one stops it at once."""
    received: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        click.echo("\nstopping: finishing what is in flight (again to quit at once)...", err=True)
        control.stop()

    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread (e.g. in tests)
        return
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _common_send_options(func: F) -> F:
    func = redirect_option(func)
    for option in reversed(
        [
            click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True),
            click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."),
            click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path)),
        ]
    ):
        func = option(func)
    return func


@click.command()
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
@presets_option
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
    redirects = parse_redirects(redirect)
    try:
        source = sys.stdin.buffer if events == "-" else open(events, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read events file {events}: {exc.strerror}") from None
    size = os.fstat(source.fileno()).st_size if events != "-" and Path(events).is_file() else None
    control = RunControl()
    try:
        with _stop_on_signals(control) as stopped_by, progress_display(show, dry_run=dry_run) as report:
            stats = deliver_stream(
                preset,
                settings,
                source,
                options=options,
                concurrency=concurrency,
                dry_run=dry_run,
                journal_path=journal_path,
                dead_letter_path=dead_letter_path,
                redirects=redirects,
                progress=report,
                control=control,
                total_bytes=size,
            )
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    title = f"relay send {preset.name}" + (" (dry run)" if dry_run else "")
    print_summary(title, stats, None if dry_run else dead_letter_path, dry_run=dry_run)
    _finish(preset, stats, summary_json, stopped_by)


@click.command()
@click.argument("dead_letter", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The run's journal, to resolve replayed events in (default: PRESET.journal.sqlite beside the dead letter).",
)
@_common_send_options
@presets_option
def replay(
    dead_letter: Path,
    settings_path: Path,
    journal_path: Path | None,
    concurrency: int,
    redirect: tuple[str, ...],
    progress: bool | None,
    summary_json: Path | None,
    presets_root: Path | None,
) -> None:
    """Re-deliver the events in DEAD_LETTER, in order; what still fails stays in it.

    Each event is sent exactly as it was received. With the run's journal (by default
    PRESET.journal.sqlite beside the dead letter), delivered events are resolved there,
    so later runs stop parking their contacts.
    """
    entries = read_dead_letter(dead_letter)
    presets = {entry.preset for entry in entries}
    if len(presets) > 1:
        raise click.UsageError(f"{dead_letter} mixes presets {sorted(presets)}; replay them separately")
    if not entries:
        click.echo(f"{dead_letter} is empty: nothing to replay")
        return
    preset = open_preset(presets.pop(), presets_root)
    settings, options = read_settings(settings_path, preset)
    if journal_path is None and (dead_letter.parent / f"{preset.name}.journal.sqlite").exists():
        journal_path = dead_letter.parent / f"{preset.name}.journal.sqlite"
    control = RunControl()
    with _stop_on_signals(control) as stopped_by, progress_display(bool(progress)) as report:
        stats = replay_dead_letter(
            preset,
            settings,
            dead_letter,
            options=options,
            concurrency=concurrency,
            journal_path=journal_path,
            redirects=parse_redirects(redirect),
            progress=report,
            control=control,
        )
    print_summary(f"relay replay {dead_letter}", stats, dead_letter)
    _finish(preset, stats, summary_json, stopped_by)


@click.command()
@click.argument("preset_name", metavar="PRESET")
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--fix", is_flag=True, help="Repair what the preset knows how to (e.g. create missing properties).")
@redirect_option
@presets_option
def check(
    preset_name: str, settings_path: Path, fix: bool, redirect: tuple[str, ...], presets_root: Path | None
) -> None:
    """Preflight: do the credentials, the list and the needed properties work?"""
    preset = open_preset(preset_name, presets_root)
    settings, _ = read_settings(settings_path, preset)
    if not preset.checks:
        click.echo(f"{preset.name} declares no checks")
        return
    results = check_preset(preset, settings, fix=fix, redirects=parse_redirects(redirect))
    for result in results:
        click.echo(f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.description}")
        for fixed in result.fixed:
            click.echo(f"     fixed: {fixed}")
        for problem in result.problems:
            click.echo(f"     {problem}")
    if not all(r.ok for r in results):
        if not fix and any(spec.fix for spec in preset.checks):
            flag = presets_flag(presets_root)
            click.echo(
                f"(run `relay check{flag} {preset_name} --settings {settings_path} --fix` to repair what can be)"
            )
        raise SystemExit(1)
