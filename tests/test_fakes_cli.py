"""`relay fake PRESET` serves the stateful fake of each bulk-capable vendor: alone, it takes the
bundled example settings, and the `relay send` command it prints delivers to it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from relay.cli import main

PRESETS = ["brevo", "customerio", "facebook_capi", "klaviyo", "mailchimp", "sendgrid"]


def _events(path: Path) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    context = {
        "userAgent": "Mozilla/5.0",
        "ip": "203.0.113.9",
        "page": {"url": "https://shop.example.com/"},
        "consent": {"canonical": {"marketing": True}},
    }
    events = [
        {
            "type": "identify",
            "userId": "u-1",
            "anonymousId": "a-1",
            "messageId": "m-1",
            "timestamp": now,
            "traits": {"email": "jane@example.com", "first_name": "Jane"},
            "context": context,
        },
        {
            "type": "track",
            "event": "Signed Up",
            "userId": "u-1",
            "anonymousId": "a-1",
            "messageId": "m-2",
            "timestamp": now,
            "properties": {"email": "jane@example.com"},
            "context": context,
        },
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.mark.parametrize("name", PRESETS)
def test_relay_fake_alone_serves_the_stateful_fake_and_relay_send_delivers(name: str, tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-m", "relay", "fake", name], stderr=subprocess.PIPE, text=True) as fake:
        try:
            assert fake.stderr is not None
            banner = fake.stderr.readline()
            assert banner.startswith(f"fake {name} listening on "), banner  # the stateful fake, not the recording one
            url = banner.split(" listening on ")[1].split()[0]
            advice = fake.stderr.readline()
            settings = advice.split("--settings ")[1].split()[0]
            assert Path(settings).name == f"{name}.settings.yaml"
            redirects = [part.split()[0].strip("'") for part in advice.split("--redirect ")[1:]]
            events = tmp_path / "events.ndjson"
            _events(events)
            arguments = [
                "send",
                name,
                str(events),
                "--settings",
                settings,
                "--no-progress",
                "--journal",
                str(tmp_path / "j.sqlite"),
                "--dead-letter",
                str(tmp_path / "dead.ndjson"),
            ]
            for redirect in redirects:
                arguments += ["--redirect", redirect]
            result = CliRunner().invoke(main, arguments)
            assert result.exit_code == 0, result.output
            log = requests.get(f"{url}/_fake/log", timeout=5).json()
            assert log and all(200 <= entry["status"] < 300 for entry in log), log
            state = requests.get(f"{url}/_fake/state", timeout=5)
            assert state.status_code == 200 and state.json(), state.text  # the state serialises
        finally:
            fake.terminate()


def test_in_the_studio_a_presets_own_example_settings_come_before_other_presets(tmp_path: Path) -> None:
    """The bundled example settings of presets outside a user's folder are offered too, but the
    preset's own file stays the first (default) choice."""
    from relay.studio.workspace import Workspace
    from tests.studio_helpers import make_workspace

    make_workspace(tmp_path, presets=("mailjet",))
    workspace = Workspace(tmp_path / "presets", cwd=tmp_path)
    entry = next(e for e in workspace.presets() if e.name == "mailjet")
    labels = [choice.label for choice in workspace.settings_choices(entry)]
    assert labels[0] == "(bundled) mailjet.settings.yaml"
    assert "(bundled) brevo.settings.yaml" in labels
