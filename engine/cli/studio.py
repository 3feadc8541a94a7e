"""``relay studio``: the local authoring page (see ``relay.studio``)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import presets_option

__all__ = ["studio"]


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--settings",
    "settings_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A settings file to offer (repeatable); PRESET.settings.yaml files nearby are offered too.",
)
@click.option(
    "--dead-letter",
    "dead_letters",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A dead-letter file whose events to offer (repeatable); relay-out/*.deadletter.ndjson is offered too.",
)
@click.option("--open/--no-open", "open_browser", default=True, show_default=True, help="Open the page in a browser.")
@presets_option
def studio(
    port: int,
    settings_files: tuple[Path, ...],
    dead_letters: tuple[Path, ...],
    open_browser: bool,
    presets_root: Path | None,
) -> None:
    """Edit presets in a local web page and see, on every edit, the decision, the trace,
    the exact requests and the golden diff. Serves on 127.0.0.1 until interrupted."""
    from ..studio import StudioServer, Workspace  # starlette and uvicorn load only for this command

    workspace = Workspace(presets_root, settings_files=settings_files, dead_letters=dead_letters)
    try:
        server = StudioServer(workspace, port=port)
    except OSError as exc:
        raise click.UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    click.echo(f"relay studio on {server.url}", err=True)
    click.echo(f"  presets: {workspace.root}   (Ctrl-C stops it; the token in the URL changes every run)", err=True)
    server.run(open_browser=open_browser)
