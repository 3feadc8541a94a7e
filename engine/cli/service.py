"""``relay serve`` (the collector and delivery), ``relay worker`` (Kafka delivery), ``relay init``."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from .. import bundled
from ..errors import InputError

__all__ = ["init", "serve", "worker"]

_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("relay.yaml"),
    show_default=True,
    help="The service config.",
)


def _load(config_path: Path, host: str | None, port: int | None) -> object:
    from ..service.config import load_config

    if not config_path.is_file():
        raise InputError(f"no service config at {config_path} (`relay init` writes an example)")
    config = load_config(config_path)
    if host is not None:
        config.host = host
    if port is not None:
        config.port = port
    return config


@click.command()
@_CONFIG
@click.option("--host", default=None, help="Listen on this address (overrides server.host).")
@click.option("--port", type=int, default=None, help="Listen on this port; 0 picks a free one (overrides server.port).")
def serve(config_path: Path, host: str | None, port: int | None) -> None:
    """Run the collector (Segment's HTTP API) and deliver every accepted event to each destination.

    With the embedded queue, one command does everything (delivery runs in a child process
    on the same queue). With queue type kafka, this process only collects: run `relay worker`
    processes to deliver. Stops cleanly on SIGTERM.
    """
    from ..service.app import Service, listen, serve_app
    from ..service.config import ServiceConfig

    config = _load(config_path, host, port)
    assert isinstance(config, ServiceConfig)
    try:
        sock = listen(config.host, config.port)
    except OSError as exc:
        raise InputError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    service = Service(config, delivery="process")
    queue = "kafka" if config.kafka else f"embedded, in {config.data_dir}"
    names = ", ".join(d.name for d in config.destinations)

    def announce(url: str) -> None:
        delivering = (
            f"delivering to {names}"
            if service.runners or service.delivery
            else "collecting only: run `relay worker` to deliver"
        )
        click.echo(f"relay serve: listening on {url} (queue: {queue}; {delivering})", err=True)

    serve_app(service, sock, announce=announce)


@click.command()
@_CONFIG
@click.option("--port", type=int, default=None, help="Serve /health, /ready and /metrics here (overrides worker.port).")
@click.option("--name", default=None, help="This worker's name in dead-letter file names (default: host-pid).")
def worker(config_path: Path, port: int | None, name: str | None) -> None:
    """Join the Kafka consumer groups and deliver to every destination (queue type kafka)."""
    from ..service.app import listen, serve_app, worker_service
    from ..service.config import ServiceConfig

    config = _load(config_path, None, None)
    assert isinstance(config, ServiceConfig)
    if config.kafka is None:
        raise InputError(f"{config_path}: the queue is embedded; `relay serve` delivers too, no worker is needed")
    if port is not None:
        config.worker_port = port
    try:
        sock = listen(config.worker_host, config.worker_port)
    except OSError as exc:
        raise InputError(f"cannot listen on {config.worker_host}:{config.worker_port}: {exc.strerror}") from None
    service = worker_service(config, name)

    def announce(url: str) -> None:
        click.echo(f"relay worker: consuming; /health, /ready and /metrics on {url}", err=True)

    serve_app(service, sock, announce=announce)


#: The example config and, for each of its destinations, a settings file (``NAME.service-settings.yaml``,
#: written as ``NAME.settings.yaml``: under its own suffix here, so it is not offered as a preset's example).
_INIT_SUFFIX = ".service-settings.yaml"


def _init_files() -> dict[str, Path]:
    examples = bundled.examples_dir()
    files = {"relay.yaml": examples / "relay.yaml"}
    for path in sorted(examples.glob(f"*{_INIT_SUFFIX}")):
        files[path.name.removesuffix(_INIT_SUFFIX) + ".settings.yaml"] = path
    return files


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def init(directory: Path, force: bool) -> None:
    """Write an example service config (relay.yaml) and its settings files into DIRECTORY."""
    targets = {directory / name: source for name, source in _init_files().items()}
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already exist(s); --force overwrites")
    directory.mkdir(parents=True, exist_ok=True)
    for target, source in targets.items():
        shutil.copyfile(source, target)
        click.echo(f"wrote {target}")
    config = directory / "relay.yaml"
    click.echo(
        "\nnext:\n"
        "  export RELAY_WRITE_KEY=<a long random string>   # what your SDKs send\n"
        "  export the API keys each settings file names\n"
        f"  relay serve --config {config}\n"
        "or see it all on local fakes first: relay demo --serve"
    )
