"""What every command shares: option decorators, opening presets and settings, reading events."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from ..errors import EventError, InputError, SettingsError
from ..preset.compiler import load_preset
from ..preset.locate import presets_dir, resolve_preset
from ..preset.model import CompiledPreset
from ..preset.settings import RESERVED, RunOptions, Settings, load_settings_doc, split_run_options

__all__ = [
    "open_preset",
    "parse_redirects",
    "presets_flag",
    "presets_option",
    "read_event",
    "read_settings",
    "redirect_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def presets_option(func: F, help: str = "Directory of presets (default: the bundled presets; env RELAY_PRESETS).") -> F:
    return click.option(
        "--presets",
        "presets_root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="RELAY_PRESETS",
        help=help,
    )(func)


def redirect_option(func: F) -> F:
    return click.option(
        "--redirect",
        "redirect",
        multiple=True,
        metavar="FROM=TO",
        help="Send requests for URL prefix FROM to TO instead (e.g. to a local fake).",
    )(func)


def presets_flag(presets_root: Path | None) -> str:
    """`` --presets DIR`` as the user gave it, for hints that repeat a command ('' for the bundled)."""
    return f" --presets {presets_root}" if presets_root is not None else ""


def open_preset(name: str, presets_root: Path | None) -> CompiledPreset:
    """Load a preset by name or path; PresetNotFound and PresetErrors go to the error handler."""
    return load_preset(resolve_preset(name, presets_dir(presets_root)))


def read_settings(path: Path, preset: CompiledPreset) -> tuple[Settings, RunOptions]:
    """The same settings file serves every command: preset settings plus ``relay:`` run options.

    Problems with both parts are reported together, in one SettingsError naming the file.
    """
    doc = load_settings_doc(path)
    problems: list[str] = []
    try:
        raw, options = split_run_options(doc.data, str(path), doc)
    except SettingsError as exc:
        problems += exc.problems
        raw, options = {k: v for k, v in doc.data.items() if k != RESERVED}, RunOptions()
    try:
        settings = preset.resolve_settings(raw)
    except SettingsError as exc:
        problems += exc.problems
    if problems:
        raise SettingsError(preset.name, problems, file=str(path))
    return settings, options


def parse_redirects(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--redirect FROM=TO`` pairs (exit 2 otherwise): FROM an absolute http(s) URL prefix, where
    ``*`` may stand for any part of the host or path, or a lone ``*``; TO an absolute http(s) URL."""
    out = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"takes FROM=TO, got {pair!r}", param_hint="--redirect")
        problems = [("FROM", source, None if source == "*" else _url_problem(source.replace("*", "x")))]
        problems.append(("TO", target, _url_problem(target)))
        for side, url, problem in problems:
            if problem:
                raise click.BadParameter(f"{side} {url!r} {problem} (in {pair!r})", param_hint="--redirect")
        out[source] = target
    return out


def _url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL: it must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "contains spaces or control characters"
    return None


def read_event(source: str) -> Any:
    """One event from a JSON file, or ``-`` for stdin."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read event file {source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(event, dict):
        raise EventError(f"{source}: an event must be a JSON object")
    return event
