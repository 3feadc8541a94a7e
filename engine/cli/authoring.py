"""Authoring commands: ``relay docs`` and ``relay new``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..authoring.docs import render_docs
from ..authoring.scaffold import default_presets_root, scaffold
from ..preset.locate import preset_dirs, presets_dir
from .common import open_preset, presets_flag, presets_option

__all__ = ["docs", "new"]

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("names", nargs=-1, metavar="[PRESET]...")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write <name>.md files here instead of printing them.",
)
@click.option("--check", is_flag=True, help="Exit 1 if a page in --out-dir (default docs/presets) is stale.")
@presets_option
def docs(names: tuple[str, ...], out_dir: Path | None, check: bool, presets_root: Path | None) -> None:
    """Generate a Markdown page for each PRESET from the preset itself (all by default)."""
    chosen = list(names) or [d.name for d in preset_dirs(presets_dir(presets_root))]
    if check and out_dir is None:
        out_dir = Path("docs") / "presets"
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
        flag = presets_flag(presets_root)
        click.echo(f"stale (run `relay docs{flag} --out-dir {out_dir}`): " + ", ".join(stale), err=True)
        raise SystemExit(1)


def _where_to_create(func: F) -> F:
    return presets_option(
        func, help="Where to create it (default: presets/ in a relay checkout, else the current directory)."
    )


@click.command()
@click.argument("name")
@_where_to_create
def new(name: str, presets_root: Path | None) -> None:
    """Scaffold a new preset NAME: a commented preset.yaml, a request schema, a README and two goldens."""
    if presets_root is not None:
        root, bundled_root, flag = presets_root, False, presets_flag(presets_root)
    else:
        root, bundled_root = default_presets_root()
        flag = "" if bundled_root else presets_flag(Path("."))
    created = scaffold(name, root, bundled_root=bundled_root, presets_flag=flag)
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"next: edit the preset, then `relay validate{flag} {name}` and `relay golden{flag} {name}`")
