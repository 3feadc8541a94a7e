"""The ``relay`` command line: validate, render and golden (offline work)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .compiler import load_preset
from .errors import EventError, GoldenError, PresetErrors, RelayError
from .golden import add_case, discover_cases, run_case, update_case
from .model import CompiledPreset
from .paths import display_path, preset_dirs, presets_dir, presets_root_of, resolve_preset
from .settings import Settings, load_settings_file

__all__ = ["main"]


def _presets_option(func: Any) -> Any:
    return click.option(
        "--presets",
        "presets_root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="RELAY_PRESETS",
        help="Directory of presets (default: the bundled presets/; env RELAY_PRESETS).",
    )(func)


def open_preset(name: str, presets_root: Path | None) -> CompiledPreset:
    try:
        return load_preset(resolve_preset(name, presets_dir(presets_root)))
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None
    except PresetErrors as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None


#: Settings-file key for run options (rate_limit, max_attempts), not preset settings.
RESERVED = "relay"


def resolve_run_settings(preset: CompiledPreset, raw: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """Split the run options off a settings mapping, then validate the rest against the preset."""
    raw = dict(raw)
    options = raw.pop(RESERVED, None) or {}
    if not isinstance(options, dict) or set(options) - {"rate_limit", "max_attempts"}:
        raise click.UsageError(f"settings key '{RESERVED}' takes only rate_limit and max_attempts")
    return preset.resolve_settings(raw), options


def read_settings(path: Path, preset: CompiledPreset) -> tuple[Settings, dict[str, Any]]:
    """The same settings file serves every command; a bad one exits 2 naming each field."""
    try:
        return resolve_run_settings(preset, load_settings_file(path))
    except RelayError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="relay")
def main() -> None:
    """relay: deliver analytics events to email tools, defined in YAML presets."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@_presets_option
def validate(paths: tuple[Path, ...], presets_root: Path | None) -> None:
    """Check presets (all of them by default); print every error as file:line:col: /pointer: message."""
    targets = (
        [resolve_preset(str(p)) for p in paths]
        if paths
        else [display_path(d / "preset.yaml") for d in preset_dirs(presets_dir(presets_root))]
    )
    if not targets:
        raise click.UsageError(f"no presets found under {presets_dir(presets_root)}")
    failed = 0
    for target in targets:
        try:
            load_preset(target)
        except PresetErrors as exc:
            failed += 1
            for error in exc.errors:
                click.echo(str(error))
            continue
        click.echo(f"ok {target}")
    if failed:
        click.echo(f"{failed} of {len(targets)} presets have errors", err=True)
        raise SystemExit(1)


def read_event(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(event, dict):
        raise EventError(f"{source}: an event must be a JSON object")
    return event


@main.command()
@click.argument("preset_name", metavar="PRESET")
@click.option("--event", "event_source", required=True, help="Event JSON file, or - for stdin.")
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.option("--trace/--no-trace", default=None, help="Include the decision trace (default: on for text).")
@_presets_option
def render(
    preset_name: str,
    event_source: str,
    settings_path: Path,
    output_format: str,
    trace: bool | None,
    presets_root: Path | None,
) -> None:
    """Show the request PRESET would send for one event, with the decision trace. Sends nothing."""
    preset = open_preset(preset_name, presets_root)
    settings, _ = read_settings(settings_path, preset)
    try:
        decision = preset.render(read_event(event_source), settings)
    except RelayError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    if output_format == "json":
        click.echo(json.dumps(decision.to_dict(trace=bool(trace)), ensure_ascii=False, indent=2))
        return
    out = decision.to_dict(trace=trace is not False)
    if decision.action == "drop":
        click.echo(f"DROP  {out['reason']}  (rule: {out['rule']})")
    else:
        req = out["request"]
        click.echo(f"SEND  {req['method']} {req['url']}")
        for name, value in req["headers"].items():
            click.echo(f"  {name}: {value}")
        click.echo(json.dumps(req["body"], ensure_ascii=False, indent=2))
    if "trace" in out:
        t = out["trace"]
        click.echo(f"\ntrace: mapping={t['mapping']}")
        for name, path in t["selectors"].items():
            click.echo(f"  selector {name}: {path or '(no match)'}")
        for step in t["rules"]:
            click.echo(f"  rule {step['rule']}: {step['effect']}")


@main.command()
@click.argument("names", nargs=-1, metavar="[PRESET]...")
@click.option("--update", is_flag=True, help="Rewrite expectations from the current render (keeps comments).")
@click.option("--add", "add_to", metavar="PRESET", help="Record a new case for PRESET (with --event and --name).")
@click.option("--event", "event_source", help="With --add: the event JSON file, or - for stdin.")
@click.option("--name", "case_name", help="With --add: the case name (the file is <name>.yaml).")
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(exists=True, path_type=Path),
    help="With --add: fake settings (default: those of the preset's first case).",
)
@click.option("--description", default="", help="With --add: what the case pins.")
@_presets_option
def golden(
    names: tuple[str, ...],
    update: bool,
    add_to: str | None,
    event_source: str | None,
    case_name: str | None,
    settings_path: Path | None,
    description: str,
    presets_root: Path | None,
) -> None:
    """Render every golden case and diff it against its expectation."""
    if add_to:
        _add_golden(add_to, event_source, case_name, settings_path, description, presets_root)
        return
    root = presets_dir(presets_root)
    chosen = list(names) or [d.name for d in preset_dirs(root)]
    passed = failed = updated = 0
    for name in chosen:
        preset = open_preset(name, presets_root)
        try:
            cases = discover_cases(preset.name, presets_root_of(preset.path))
        except GoldenError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None
        if not cases:
            click.echo(f"FAIL {name}: no golden cases", err=True)
            failed += 1
        for case in cases:
            result = run_case(case, preset)
            if result.ok:
                passed += 1
            elif update:
                update_case(case, result.actual)
                updated += 1
                click.echo(f"updated {case.id}")
            else:
                failed += 1
                click.echo(f"FAIL {case.id}\n{result.diff()}")
    summary = f"goldens: {passed} passed, {failed} failed" + (f", {updated} updated" if update else "")
    click.echo(summary)
    if failed:
        raise SystemExit(1)


def _add_golden(
    preset_name: str,
    event_source: str | None,
    case_name: str | None,
    settings_path: Path | None,
    description: str,
    presets_root: Path | None,
) -> None:
    if not event_source or not case_name:
        raise click.UsageError("--add needs --event FILE and --name CASE")
    preset = open_preset(preset_name, presets_root)
    base = presets_root_of(preset.path)
    try:
        event = read_event(event_source)
        if settings_path is not None:
            settings = load_settings_file(settings_path)
        else:
            existing = discover_cases(preset.name, base)
            if not existing:
                raise click.UsageError("no case to borrow settings from: pass --settings with fake values")
            settings = existing[0].settings
        case, result = add_case(
            preset, base, case_name, event, settings, description or "Recorded by relay golden --add."
        )
    except RelayError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(json.dumps(result.actual, ensure_ascii=False, indent=2))
    click.echo(f"recorded {case.path} (review it, then commit)")


# Importing these modules registers their commands on `main`.
from . import cli_authoring, cli_delivery  # noqa: E402,F401
