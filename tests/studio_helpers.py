"""A scratch presets directory for studio tests, and the headless Chromium they drive.

Studio writes presets and goldens, so its tests work on copies: the bundled
presets laid out as a user's ``--presets DIR`` (goldens beside each preset, the
request schemas where the preset's relative ``schema:`` path finds them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.paths import ROOT

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "SECRET", "chromium_missing", "make_workspace", "seed_example"]

CHROMIUM = Path("/usr/bin/chromium")
#: Without the background-networking flags Chromium floods a closed network with lookups.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: A secret value no response may ever hold.
SECRET = "s3cr3t-never-shown-$`\"'"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)"
    return None


def make_workspace(root: Path, presets: tuple[str, ...] = ("mailjet", "mailgun", "webhook")) -> Path:
    """``root/presets/<name>`` with goldens, ``root/schemas``, settings files and a dead letter."""
    for name in presets:
        shutil.copytree(ROOT / "presets" / name, root / "presets" / name)
        if (ROOT / "schemas" / name).is_dir():
            shutil.copytree(ROOT / "schemas" / name, root / "schemas" / name)
        shutil.copytree(ROOT / "tests" / "golden" / name, root / "presets" / name / "golden")
    (root / "wrong-list.settings.yaml").write_text(
        "# a list the fake does not have: its 404 has a hint\napi_key: demo-public-key\n"
        "secret_key: demo-secret-key\nlist_id: 99\n",
        encoding="utf-8",
    )
    (root / "secret.settings.yaml").write_text(
        json.dumps({"api_key": "pub-visible", "secret_key": SECRET, "list_id": 10001}), encoding="utf-8"
    )
    dead = root / "relay-out" / "mailjet.deadletter.ndjson"
    dead.parent.mkdir()
    entry: dict[str, Any] = {
        "key": "k1",
        "preset": "mailjet",
        "line": 3,
        "event": {"type": "identify", "traits": {"email": "dead@example.com"}},
        "error": "Contact list 99 does not exist",
        "status": 404,
        "attempts": 1,
        "hint": "check the list",
    }
    dead.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    return root / "presets"


def seed_example() -> str:
    return str(ROOT / "examples" / "mailjet-signed-up.json")
