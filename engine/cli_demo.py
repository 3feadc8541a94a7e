"""``relay fake`` (run a fake vendor server) and ``relay demo`` (the main job, offline).

The demo is driven by ``examples/demo.yaml``: which presets, which fake server
answers for which real API host, and the settings to use. Nothing here names a
vendor; the fakes register themselves in ``fakes.FAKES``.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .checks import run_checks
from .cli import _presets_option, main, open_preset, resolve_run_settings
from .cli_delivery import deliver_stream, print_summary
from .deliver import Deliverer
from .paths import ROOT
from .transport import RequestsTransport
from .yamlsource import load_yaml

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["run_demo"]


def _fakes() -> Any:
    import fakes

    return fakes


@main.command()
@click.argument("name")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    help="YAML/JSON seeding the fake: keys, lists, properties.",
)
@click.option("--rate-limit", type=int, default=None, help="Answer 429 past this many requests per second per key.")
def fake(name: str, port: int, config_path: Path | None, rate_limit: int | None) -> None:
    """Run the fake NAME vendor server on 127.0.0.1 until interrupted.

    State and the request log are at /_fake/state and /_fake/log.
    """
    fakes = _fakes()
    if name not in fakes.FAKES:
        raise click.UsageError(f"no fake named {name!r} (known: {', '.join(sorted(fakes.FAKES))})")
    vendor = fakes.FAKES[name]()
    if config_path:
        vendor.configure(load_yaml(config_path).data or {})
    server = fakes.FakeServer(vendor, port=port, rate_limit=fakes.RateLimit(rate_limit) if rate_limit else None)
    click.echo(f"fake {name} listening on {server.url}  (state: {server.url}/_fake/state)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def run_demo(config_path: Path, console: Console, concurrency: int = 4) -> dict[str, Any]:
    """Start the fakes, check and send the sample stream through each destination."""
    fakes = _fakes()
    config = load_yaml(config_path).data
    events_path = (config_path.parent / config["events"]).resolve()
    report: dict[str, Any] = {}
    servers = []
    try:
        with tempfile.TemporaryDirectory(prefix="relay-demo-") as scratch:
            for destination in config["destinations"]:
                vendor = fakes.FAKES[destination["fake"]]()
                fake_config = dict(destination.get("fake_config", {}))
                limit = fake_config.pop("rate_limit", None)  # requests per second, to show retries
                vendor.configure(fake_config)
                server = fakes.FakeServer(vendor, rate_limit=fakes.RateLimit(limit) if limit else None).start()
                servers.append(server)
                preset = open_preset(destination["preset"], None)
                settings, options = resolve_run_settings(preset, destination["settings"])
                redirects = {destination["redirect"]: server.url}
                console.rule(f"[bold]{preset.metadata['title']}[/bold]  ({preset.name} -> fake on {server.url})")
                transport = RequestsTransport(redirects=redirects)
                retrying = Deliverer(preset, settings, transport)
                fix = destination.get("fix", False)
                for result in run_checks(preset, settings, transport, fix=fix, send=retrying.exchange):
                    mark = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
                    console.print(
                        f"check {mark} {result.name}"
                        + "".join(f"\n   fixed: {f}" for f in result.fixed)
                        + "".join(f"\n   {p}" for p in result.problems)
                    )
                transport.close()
                dead_letter = Path(scratch) / f"{preset.name}.deadletter.ndjson"
                with open(events_path, "rb") as source:
                    stats = deliver_stream(
                        preset,
                        settings,
                        options,
                        source,
                        concurrency=concurrency,
                        dry_run=False,
                        journal_path=Path(scratch) / f"{preset.name}.sqlite",
                        dead_letter_path=dead_letter,
                        redirects=redirects,
                        progress=False,
                    )
                print_summary(f"relay send {preset.name} {events_path.name}", stats, None, console)
                title, headers, rows = vendor.table()
                from rich.table import Table

                table = Table(title=title, title_justify="left")
                for header in headers:
                    table.add_column(header, overflow="fold")
                for row in rows:
                    table.add_row(*[_cell(v) for v in row])
                console.print(table)
                report[preset.name] = {**stats.as_dict(), "state_rows": len(rows)}
    finally:
        for server in servers:
            server.stop()
    return report


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    default=ROOT / "examples" / "demo.yaml",
    show_default="examples/demo.yaml",
)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path))
@_presets_option
def demo(config_path: Path, concurrency: int, summary_json: Path | None, presets_root: Path | None) -> None:
    """The main job on embedded defaults: local fake vendors, the bundled sample stream, both presets."""
    from rich.console import Console

    started = time.monotonic()
    console = Console()
    report = run_demo(config_path, console, concurrency)
    wall = time.monotonic() - started
    console.rule("[bold]demo done[/bold]")
    for name, stats in report.items():
        console.print(
            f"{name}: {stats['events']} events, {stats['delivered']} delivered, {stats['dropped']} dropped, "
            f"{stats['failed']} failed, {stats['retries']} retried, {stats['lookups']} lookups"
        )
    console.print(f"wall time {wall:.2f} s")
    if summary_json:
        summary_json.write_text(json.dumps({"destinations": report, "seconds": round(wall, 3)}, indent=2) + "\n")
    if any(stats["failed"] for stats in report.values()):
        raise SystemExit(1)
