"""Authoring commands: ``relay docs`` and ``relay new``."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import _presets_option, main, open_preset
from .docs import render_docs
from .paths import ROOT, preset_dirs, presets_dir
from .scaffold import scaffold

__all__: list[str] = []


@main.command()
@click.argument("names", nargs=-1, metavar="[PRESET]...")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write <name>.md files here instead of printing (bundled presets: docs/presets).",
)
@click.option("--check", is_flag=True, help="Exit 1 if a page in --out-dir is stale; write nothing.")
@_presets_option
def docs(names: tuple[str, ...], out_dir: Path | None, check: bool, presets_root: Path | None) -> None:
    """Generate a Markdown page for each PRESET from the preset itself (all by default)."""
    chosen = list(names) or [d.name for d in preset_dirs(presets_dir(presets_root))]
    if check and out_dir is None:
        out_dir = ROOT / "docs" / "presets"
    stale = []
    for name in chosen:
        page = render_docs(open_preset(name, presets_root))
        if out_dir is None:
            click.echo(page)
            continue
        target = out_dir / f"{name}.md"
        if check:
            if not target.exists() or target.read_text(encoding="utf-8") != page:
                stale.append(str(target))
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
        click.echo(f"wrote {target}")
    if stale:
        click.echo("stale (run `relay docs --out-dir ...`): " + ", ".join(stale), err=True)
        raise SystemExit(1)


@main.command()
@click.argument("name")
@click.option(
    "--presets",
    "presets_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="RELAY_PRESETS",
    help="Where to create it (default: the bundled presets/).",
)
def new(name: str, presets_root: Path | None) -> None:
    """Scaffold a new preset NAME: a commented preset.yaml, a request schema, a README and two goldens."""
    try:
        created = scaffold(name, presets_dir(presets_root), bundled=presets_root is None)
    except (FileExistsError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"next: edit the preset, then `relay validate` and `relay golden {name}`")
