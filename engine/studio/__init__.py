"""relay studio: a local page where a preset author edits YAML and sees, on every edit, the
decision, the trace, where each field came from, the exact requests and the golden diff.

    workspace   what studio works on: presets, events (goldens, examples, dead letters), settings
    review      the view of one event: decision, trace, field origins, requests (secrets redacted)
    curl        copy as curl, each secret an environment variable
    actions     check, preview, accept a golden, save: plain functions over a workspace
    sandbox     send to a local fake of the preset, with relay's own delivery and retry policy
    app         the Starlette app: Host check, per-run token, security headers
    server      bind 127.0.0.1, serve with uvicorn, open the page
"""

from __future__ import annotations

from .app import create_app
from .server import StudioServer
from .workspace import Workspace

__all__ = ["StudioServer", "Workspace", "create_app"]
