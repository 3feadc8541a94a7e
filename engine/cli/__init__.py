"""The ``relay`` command line: a thin layer over the library.

Commands parse arguments and print. Errors are mapped to exit codes in one
place, ``RelayGroup.invoke``:

- 0: success;
- 1: the work failed: a preset has errors, a golden differs, an event could not be
  rendered, a delivery failed;
- 2: relay was asked for something it cannot do: an unknown preset, a file it
  cannot read, settings that do not fit the preset (click's usage errors too).
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import (
    EventError,
    GoldenError,
    InputError,
    PresetErrors,
    PresetNotFound,
    RelayError,
    RenderError,
    SettingsError,
)
from . import authoring, delivery, demo, offline, service, studio

__all__ = ["main"]

#: Bad invocation or input: exit 2. Everything else relay raises: exit 1.
_USAGE_ERRORS = (PresetNotFound, InputError, SettingsError)


class RelayGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PresetErrors as exc:
            for error in exc.errors:
                click.echo(str(error), err=True)
            raise SystemExit(1) from None
        except _USAGE_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(2) from None
        except RenderError as exc:
            click.echo(f"error: {exc.located()}", err=True)
            raise SystemExit(1) from None
        except (EventError, GoldenError, RelayError) as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None


@click.group(cls=RelayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="relay")
def main() -> None:
    """relay: deliver analytics events to email tools, defined in YAML presets."""


for command in (
    offline.validate,
    offline.compile_preset,
    offline.render,
    offline.golden,
    delivery.send,
    delivery.replay,
    delivery.check,
    authoring.new,
    authoring.docs,
    demo.fake,
    demo.demo,
    service.serve,
    service.worker,
    service.init,
    studio.studio,
):
    main.add_command(command)
