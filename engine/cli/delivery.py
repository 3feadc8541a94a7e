"""The delivery commands: send, replay and check."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..delivery.checks import check_preset
from ..delivery.runner import StreamStats
from ..delivery.stream import deliver_stream
from ..errors import InputError
from ..preset.model import CompiledPreset
from .common import open_preset, parse_redirects, presets_flag, presets_option, read_settings, redirect_option
from .display import print_summary, progress_display

__all__ = ["check", "replay", "send"]

F = TypeVar("F", bound=Callable[..., Any])


def _finish(preset: CompiledPreset, stats: StreamStats, summary_json: Path | None) -> None:
    """Write the JSON summary if asked; the exit code says whether anything failed."""
    if summary_json:
        summary_json.write_text(json.dumps({"preset": preset.name, **stats.as_dict()}, indent=2) + "\n")
    if stats.failed:
        raise SystemExit(1)


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
    try:
        source = sys.stdin.buffer if events == "-" else open(events, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read events file {events}: {exc.strerror}") from None
    try:
        with progress_display(show) as report:
            stats = deliver_stream(
                preset,
                settings,
                source,
                options=options,
                concurrency=concurrency,
                dry_run=dry_run,
                journal_path=journal_path,
                dead_letter_path=dead_letter_path,
                redirects=parse_redirects(redirect),
                progress=report,
            )
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    print_summary(
        f"relay send {preset.name}" + (" (dry run)" if dry_run else ""), stats, None if dry_run else dead_letter_path
    )
    _finish(preset, stats, summary_json)


@click.command()
@click.argument("dead_letter", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@_common_send_options
@presets_option
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
    with progress_display(bool(progress)) as report:
        stats = deliver_stream(
            preset,
            settings,
            io.BytesIO(lines),
            options=options,
            concurrency=concurrency,
            journal_path=None,
            dead_letter_path=Path(remaining),
            redirects=parse_redirects(redirect),
            progress=report,
        )
    os.replace(remaining, dead_letter)  # the dead letter now holds only what still fails
    print_summary(f"relay replay {dead_letter}", stats, dead_letter)
    _finish(preset, stats, summary_json)


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
