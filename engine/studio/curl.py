"""Copy as curl: the exact request as a shell command, every secret an environment variable.

The command is what a reader pastes into a terminal after ``export``-ing the
variables it names, so a secret value never has to be shown to be reused. A
credential header that holds no declared secret (a non-secret token, say) is
still never spelled out: it becomes a variable named after the header.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Mapping

from ..runtime.decision import Request

__all__ = ["curl_command", "env_name"]

#: A piece of an argument: literal text, or the name of an environment variable.
Segment = tuple[str, str]  # ("text", value) | ("env", NAME)


def env_name(*parts: str) -> str:
    """``MAILER_SECRET_KEY`` from ``("mailer", "secret_key")``: a valid shell variable name."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").upper()
    return name if name and not name[0].isdigit() else f"V_{name}"


def _split(text: str, secrets: Mapping[str, str]) -> list[Segment]:
    """``text`` cut into literal runs and the secrets found in it (longest secret first)."""
    segments: list[Segment] = [("text", text)]
    for value, variable in sorted(secrets.items(), key=lambda item: -len(item[0])):
        if not value:
            continue
        cut: list[Segment] = []
        for kind, piece in segments:
            if kind != "text" or value not in piece:
                cut.append((kind, piece))
                continue
            for index, part in enumerate(piece.split(value)):
                if index:
                    cut.append(("env", variable))
                if part:
                    cut.append(("text", part))
        segments = cut
    return segments


def _quote(segments: list[Segment]) -> str:
    if all(kind == "text" for kind, _ in segments):
        return shlex.quote("".join(piece for _, piece in segments))
    out = []
    for kind, piece in segments:
        if kind == "env":
            out.append("${" + piece + "}")
        else:
            out.append(re.sub(r'([\\"$`])', r"\\\1", piece))
    return '"' + "".join(out) + '"'


def _has_env(segments: list[Segment]) -> bool:
    return any(kind == "env" for kind, _ in segments)


def curl_command(request: Request, secrets: Mapping[str, str], *, header_prefix: str = "") -> str:
    """``curl`` for ``request``; ``secrets`` maps each secret value to its variable name."""
    lines = [f"curl -X {request.method} {_quote(_split(request.url, secrets))}"]
    for name, value in request.headers.items():
        if name in request.credential_headers:
            scheme, _, credential = value.partition(" ")
            if scheme == "Basic" and credential:
                try:
                    pair = base64.b64decode(credential, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    pair = ""
                segments = _split(pair, secrets)
                if pair and _has_env(segments):
                    lines.append(f"-u {_quote(segments)}")
                    continue
            segments = _split(value, secrets)
            if not _has_env(segments):
                segments = [("env", env_name(header_prefix, name))]
            lines.append(f"-H {_quote([('text', f'{name}: '), *segments])}")
            continue
        lines.append(f"-H {_quote(_split(f'{name}: {value}', secrets))}")
    if request.content:
        body = request.content.decode("utf-8", "replace")
        lines.append(f"--data-raw {_quote(_split(body, secrets))}")
    return " \\\n  ".join(lines)
