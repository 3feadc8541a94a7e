"""``relay fake`` (run a fake vendor server) and ``relay demo`` (the main job, offline)."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import click

from ..bundled import examples_dir
from ..demo import DestinationReport, default_demo_config, fake_registry, run_demo
from ..preset.source import load_yaml
from .common import open_preset, presets_flag, presets_option, read_settings
from .display import print_summary

__all__ = ["demo", "fake"]


@click.command()
@click.argument("name", metavar="PRESET")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(exists=True, path_type=Path),
    help=(
        "The preset's settings: the fake accepts exactly their credentials "
        "(default: the bundled example settings for a specialised fake, else any)."
    ),
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    help="YAML/JSON seeding a specialised fake: keys, lists, properties.",
)
@click.option("--rate-limit", type=int, default=None, help="Answer 429 past this many requests per second per key.")
@presets_option
def fake(
    name: str,
    port: int,
    settings_path: Path | None,
    config_path: Path | None,
    rate_limit: int | None,
    presets_root: Path | None,
) -> None:
    """Run a fake of PRESET's vendor on 127.0.0.1 until interrupted.

    Every preset has one: a specialised fake where relay has one (relay.fakes.FAKES),
    else a recording fake built from the preset (its request schemas, its credentials
    and the vendor's answers in its fake.yaml). State and the request log are at
    /_fake/state and /_fake/log; the --redirect flags that send the preset here are printed.
    """
    fakes = fake_registry()
    preset = open_preset(name, presets_root)
    if settings_path is None and config_path is None and preset.name in fakes.FAKES:
        # A specialised fake checks credentials and lists: without settings it would refuse
        # everything, so it takes the bundled example settings that `relay send` can use too.
        example = examples_dir() / f"{preset.name}.settings.yaml"
        settings_path = example if example.is_file() else None
    settings = read_settings(settings_path, preset)[0] if settings_path else None
    vendor = fakes.fake_for(preset, settings)
    if config_path:
        vendor.configure(load_yaml(config_path).data or {})
    try:
        server = fakes.FakeServer(vendor, port=port, rate_limit=fakes.RateLimit(rate_limit) if rate_limit else None)
    except OSError as exc:
        raise click.UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    kind = "recording fake" if isinstance(vendor, fakes.RecordingFake) else "fake"
    redirects = " ".join(
        f"--redirect '{origin}={url}'" for origin, url in fakes.redirects_for(preset, server.url).items()
    )
    click.echo(f"{kind} {preset.name} listening on {server.url}  (state: {server.url}/_fake/state)", err=True)
    settings_arg = settings_path or "FILE"
    click.echo(
        f"send to it: relay send {name}{presets_flag(presets_root)} --settings {settings_arg} {redirects}", err=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def _print_destination(report: DestinationReport) -> None:
    from rich.console import Console

    console = Console()
    console.rule(f"[bold]{report.title}[/bold]  ({report.preset} -> fake on {report.fake_url})")
    _print_checks(console, report.checks)
    print_summary(f"relay send {report.preset} {report.events_file}", report.stats, None, console)
    _print_state(console, report.state)


def _print_checks(console: Any, checks: list[Any]) -> None:
    for result in checks:
        mark = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
        console.print(
            f"check {mark} {result.name}"
            + "".join(f"\n   fixed: {f}" for f in result.fixed)
            + "".join(f"\n   {p}" for p in result.problems)
        )


def _print_state(console: Any, state: tuple[str, list[str], list[list[Any]]]) -> None:
    from rich.table import Table

    title, headers, rows = state
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(v) for v in row])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A demo config (default: the bundled examples/demo.yaml).",
)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--serve",
    is_flag=True,
    help="Show relay as a service: start the collector and the fakes, post the stream with the Segment SDK.",
)
@presets_option
def demo(
    config_path: Path | None, concurrency: int, summary_json: Path | None, serve: bool, presets_root: Path | None
) -> None:
    """The main job on embedded defaults: local fake vendors, the bundled sample stream, both presets.

    With --presets, the config's preset names are looked up in that directory.
    """
    from rich.console import Console

    if serve:
        _demo_served(config_path or default_demo_config(), presets_root, summary_json)
        return
    started = time.monotonic()
    reports = run_demo(
        config_path or default_demo_config(),
        presets_root=presets_root,
        concurrency=concurrency,
        on_destination=_print_destination,
    )
    wall = time.monotonic() - started
    console = Console()
    console.rule("[bold]demo done[/bold]")
    for report in reports:
        stats = report.stats
        console.print(
            f"{report.preset}: {stats.events} events, {stats.delivered} delivered, {stats.dropped} dropped, "
            f"{stats.failed} failed, {stats.retries} retried, {stats.lookups} lookups"
        )
    console.print(f"wall time {wall:.2f} s")
    if summary_json:
        destinations = {r.preset: {**r.stats.as_dict(), "state_rows": len(r.state[2])} for r in reports}
        summary_json.write_text(json.dumps({"destinations": destinations, "seconds": round(wall, 3)}, indent=2) + "\n")
    if any(r.stats.failed for r in reports):
        raise SystemExit(1)


def _demo_served(config_path: Path, presets_root: Path | None, summary_json: Path | None) -> None:
    from rich.console import Console

    from ..service.demo import run_service_demo

    console = Console()
    started = time.monotonic()
    reports = run_service_demo(config_path, presets_root=presets_root, on_message=console.print)
    wall = time.monotonic() - started
    for report in reports:
        console.rule(f"[bold]{report.title}[/bold]  (destination {report.destination} -> fake on {report.fake_url})")
        _print_checks(console, report.checks)
        _print_state(console, report.state)
    console.rule("[bold]relay serve demo done[/bold]")
    for report in reports:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in report.outcomes.items())
        console.print(f"{report.destination}: {counts}, {report.retries} retried")
    console.print(f"wall time {wall:.2f} s")
    if summary_json:
        destinations = {
            r.destination: {**r.outcomes, "retries": r.retries, "state_rows": len(r.state[2])} for r in reports
        }
        summary_json.write_text(json.dumps({"destinations": destinations, "seconds": round(wall, 3)}, indent=2) + "\n")
    if any(r.outcomes.get("failed") or r.outcomes.get("parked") for r in reports):
        raise SystemExit(1)
