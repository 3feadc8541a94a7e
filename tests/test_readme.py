"""The README's walkthrough preset works exactly as printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import relay
from relay import load_preset
from tests.paths import ROOT


def walkthrough_preset() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("Create `my-presets/acme/preset.yaml`")
    match = re.search(r"```yaml\n(.*?)```", text[start:], re.DOTALL)
    assert match, "the walkthrough's preset block is missing"
    return match.group(1)


def test_walkthrough_preset_validates_and_renders(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "preset.yaml").write_text(walkthrough_preset(), encoding="utf-8")
    (folder / "request.schema.json").write_text(
        json.dumps(
            {
                "type": "object",
                "required": ["email", "status"],
                "additionalProperties": False,
                "properties": {
                    "email": {"type": "string"},
                    "name": {"type": "string"},
                    "status": {"enum": ["subscribed", "unsubscribed", "unchanged"]},
                },
            }
        )
    )
    preset = load_preset(folder)
    settings = preset.resolve_settings({"token": "t-123", "audience": "main"}, environ={})
    decision = relay.render(
        preset, {"type": "identify", "traits": {"email": " Ann@Example.COM ", "name": "Ann"}}, settings
    )
    assert decision.to_dict() == {
        "decision": "send",
        "reason": None,
        "rule": "unknown",
        "requests": [
            {
                "step": "contact",
                "method": "POST",
                "url": "https://api.acme.test/v1/audiences/main/contacts",
                "headers": {"Content-Type": "application/json", "Authorization": "Bearer <redacted>"},
                "body": {"email": "ann@example.com", "name": "Ann", "status": "unchanged"},
            }
        ],
    }
    dropped = relay.render(preset, {"type": "identify", "traits": {"name": "No Mail"}}, settings)
    assert (dropped.action, dropped.rule) == ("drop", "no_email")


def test_the_walkthrough_and_relay_new_put_the_schema_in_the_same_place(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from relay.cli import main

    assert "    schema: request.schema.json" in walkthrough_preset()
    result = CliRunner().invoke(main, ["new", "acme", "--presets", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "acme" / "request.schema.json").is_file()
    assert "schema: request.schema.json" in (tmp_path / "acme" / "preset.yaml").read_text()
