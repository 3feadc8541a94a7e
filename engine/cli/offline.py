"""The offline commands: validate, compile, render and golden. Nothing here sends a request."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..authoring.coverage import measure
from ..authoring.golden import add_case, discover_cases, run_case, update_case
from ..errors import PresetErrors
from ..preset.compiler import load_preset
from ..preset.locate import display_path, preset_dirs, presets_dir, presets_root_of, resolve_preset
from ..preset.model import BatchSpec
from ..preset.settings import load_settings_file
from ..runtime.batch_render import render_batch
from ..runtime.render import render as render_event
from .common import open_preset, presets_flag, presets_option, read_event, read_settings

__all__ = ["compile_preset", "golden", "render", "validate"]


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@presets_option
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


@click.command("compile")
@click.argument("preset_name", metavar="PRESET")
@presets_option
def compile_preset(preset_name: str, presets_root: Path | None) -> None:
    """Print the Python PRESET is compiled to when it loads, the code relay runs for it.

    Each line that evaluates a part of the preset is headed by a comment naming it (JSON
    pointer, file:line); an error raised in that code is reported at the same place.
    """
    program = open_preset(preset_name, presets_root).program
    assert program is not None, "a preset is compiled when it loads"
    click.echo(program.source(), nl=False)


@click.command()
@click.argument("preset_name", metavar="PRESET")
@click.option("--event", "event_source", required=True, help="Event JSON file, or - for stdin.")
@click.option("--settings", "settings_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.option("--trace/--no-trace", default=None, help="Include the decision trace (default: on for text).")
@presets_option
def render(
    preset_name: str,
    event_source: str,
    settings_path: Path,
    output_format: str,
    trace: bool | None,
    presets_root: Path | None,
) -> None:
    """Show the request PRESET would send for one event, with the decision trace. Sends nothing.

    For a preset that batches, also how the event goes out batched: the bulk request that
    would carry it (alone here; a run combines it with other events).
    """
    preset = open_preset(preset_name, presets_root)
    settings, options = read_settings(settings_path, preset)
    event = read_event(event_source)
    traced = bool(trace) if output_format == "json" else trace is not False
    decision = render_event(preset, event, settings, trace=traced)
    batched = None
    if preset.batches and decision.action == "send":
        batched = render_batch(preset, [event], settings).to_dict()["requests"]
    if output_format == "json":
        shown = decision.to_dict(trace=bool(trace))
        if batched is not None:
            shown["batched"] = batched
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    out = decision.to_dict(trace=trace is not False)
    if decision.action == "drop":
        click.echo(f"DROP  {out['reason']}  (rule: {out['rule']})")
    else:
        for number, req in enumerate(out["requests"], 1):
            role = decision.requests[number - 1].role
            click.echo(f"SEND  {req['method']} {req['url']}   [{number}/{len(out['requests'])}: {req['step']}, {role}]")
            for name, value in req["headers"].items():
                click.echo(f"  {name}: {value}")
            if req["body"] is not None:
                click.echo(json.dumps(req["body"], ensure_ascii=False, indent=2))
    if batched is not None:
        on = "off in these settings (relay: {batch: false})" if options.batch is False else "on"
        click.echo(f"\nBATCHED  (batching is {on}; the requests above are what it sends when off)")
        for number, req in enumerate(batched, 1):
            click.echo(f"SEND  {req['method']} {req['url']}   [{number}/{len(batched)}: {req['step']}]")
            if req["body"] is not None:
                click.echo(json.dumps(req["body"], ensure_ascii=False, indent=2))
            batch = preset.step(req["step"]).batch
            if batch is not None:
                click.echo(_batch_note(batch))
    if "trace" in out:
        t = out["trace"]
        click.echo(f"\ntrace: mapping={t['mapping']}")
        for name, path in t["selectors"].items():
            click.echo(f"  selector {name}: {path or '(no match)'}")
        for rule in t["rules"]:
            click.echo(f"  rule {rule['rule']}: {rule['effect']}")
        for step in t["steps"]:
            click.echo(f"  request {step['step']}: {step['effect']}")


@click.command()
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
@click.option(
    "--coverage",
    is_flag=True,
    help="Also report what no golden exercises: mappings, rules, consent states, requests, fallbacks, null fields.",
)
@click.option("--strict", is_flag=True, help="With --coverage: exit 1 when anything is not covered.")
@presets_option
def golden(
    names: tuple[str, ...],
    update: bool,
    add_to: str | None,
    event_source: str | None,
    case_name: str | None,
    settings_path: Path | None,
    description: str,
    coverage: bool,
    strict: bool,
    presets_root: Path | None,
) -> None:
    """Render every golden case and diff it against its expectation."""
    if strict and not coverage:
        raise click.UsageError("--strict goes with --coverage")
    if add_to:
        _add_golden(add_to, event_source, case_name, settings_path, description, presets_root)
        return
    root = presets_dir(presets_root)
    chosen = list(names) or [d.name for d in preset_dirs(root)]
    passed = failed = updated = 0
    reports = []
    for name in chosen:
        preset = open_preset(name, presets_root)
        cases = discover_cases(preset.name, presets_root_of(preset.path))
        if coverage:
            reports.append(measure(preset, cases))
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
                if not update:
                    click.echo(f"  (to accept: relay golden{presets_flag(presets_root)} --update {name})")
    summary = f"goldens: {passed} passed, {failed} failed" + (f", {updated} updated" if update else "")
    click.echo(summary)
    uncovered = sum(len(report.gaps) + len(report.errors) for report in reports)
    for report in reports:
        click.echo(
            f"coverage {report.preset.name}: {report.covered} of {len(report.items)} covered by {report.cases} cases"
            + (f", {len(report.gaps)} not covered" if report.gaps else "")
        )
        for line in report.lines():
            click.echo(f"  {line}")
    if failed or (strict and uncovered):
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
    event = read_event(event_source)
    if settings_path is not None:
        settings = load_settings_file(settings_path)
    else:
        existing = discover_cases(preset.name, base)
        if not existing:
            raise click.UsageError("no case to borrow settings from: pass --settings with fake values")
        settings = existing[0].settings
    case, result = add_case(preset, base, case_name, event, settings, description or "Recorded by relay golden --add.")
    click.echo(json.dumps(result.actual, ensure_ascii=False, indent=2))
    click.echo(f"recorded {case.path} (review it, then commit)")


def _batch_note(batch: BatchSpec) -> str:
    """How a bulk request's answer is read: its job and its per-item errors."""
    lines = [
        f"  with up to {batch.max_items:,} events per request"
        + (f" and {batch.max_bytes:,} bytes" if batch.max_bytes else "")
        + f"; the first waits up to {batch.flush:g} s"
    ]
    if batch.job is not None:
        job = batch.job
        ends = ", ".join(sorted(job.done)) + (f" (failed: {', '.join(sorted(job.failed))})" if job.failed else "")
        lines.append(
            f"  then polls {job.poll.method_source} {job.poll.url_source} (at most every {job.every:g} s) until {ends}"
        )
    if batch.results is not None:
        where = (
            f"{batch.results.request.method_source} {batch.results.request.url_source}"
            if batch.results.request
            else "the answer"
        )
        lines.append(f"  refused items are read from {where}; each fails its event alone")
    return "\n".join(lines)
