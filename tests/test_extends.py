"""`extends`: building on presets and shared fragments, with every error in the file that wrote it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import relay
from tests.paths import ROOT

MAILJET_SETTINGS = {"api_key": "k", "secret_key": "s", "list_id": 10001}


def guide_overlay() -> str:
    """The customisation printed in the authoring guide, exactly as printed."""
    text = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    start = text.index("This is a user's customisation of the bundled Mailjet preset")
    match = re.search(r"```yaml\n(.*?)```", text[start:], re.DOTALL)
    assert match, "the guide's overlay block is missing"
    return match.group(1)


def write(folder: Path, name: str, text: str) -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    path = folder / name / "preset.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def body(preset: relay.CompiledPreset, event: dict[str, Any], settings: dict[str, Any]) -> tuple[str, Any]:
    decision = relay.render(preset, event, preset.resolve_settings(settings, environ={}))
    request = decision.request
    assert request is not None, decision.to_dict()
    return request.url, json.loads(request.content)


def test_the_guides_overlay_works_as_printed(tmp_path: Path) -> None:
    preset = relay.load_preset(write(tmp_path, "mailjet_eu", guide_overlay()))
    assert preset.name == "mailjet_eu" and preset.constants["properties"]["country"] == "str"
    event = {
        "type": "identify",
        "traits": {"email": "ada@example.com", "first_name": "Ada", "country": "NL"},
        "context": {"externalId": [{"type": "mailjetListId", "id": 20002}]},
    }
    url, sent = body(preset, event, MAILJET_SETTINGS)
    assert url.endswith("/contactslist/20002/managecontact")
    assert sent["Properties"] == {"first_name": "Ada", "country": "NL"}
    del event["context"]
    url, _ = body(preset, event, MAILJET_SETTINGS)
    assert url.endswith("/contactslist/10001/managecontact")  # no list in the event: the setting's
    # Everything else is the bundled preset's: its rules, its other mappings, its checks.
    bundled = relay.load_preset("mailjet")
    assert [r.name for r in preset.rules] == [r.name for r in bundled.rules]
    assert [c.name for c in preset.checks] == [c.name for c in bundled.checks]


OVERLAY_HEAD = "extends: mailjet\nmetadata: {name: mine, title: Mine, version: 1.0.0, description: mine}\n"


def errors(path: Path) -> list[str]:
    with pytest.raises(relay.PresetErrors) as caught:
        relay.load_preset(path)
    return [str(e) for e in caught.value.errors]


def test_a_mistake_in_an_overlay_is_located_in_the_overlay(tmp_path: Path) -> None:
    path = write(tmp_path, "mine", OVERLAY_HEAD + "selectrs:\n  country: traits.country\n")
    assert errors(path) == [f"{path}:3:1: /selectrs: unknown key 'selectrs' (hint: did you mean 'selectors'?)"]
    path = write(tmp_path, "mine", OVERLAY_HEAD + 'fields:\n  list_id: "{{ evnt_list }}"\n')
    (message,) = errors(path)
    assert message.startswith(f"{path}:4:12: /fields/list_id: undefined name 'evnt_list'")


def test_a_mistake_in_a_base_is_located_in_the_base(tmp_path: Path) -> None:
    base = write(tmp_path, "base", (ROOT / "tests/fixtures/broken/undefined_name.yaml").read_text())
    base.write_text(base.read_text().replace("../../../schemas", str(ROOT / "schemas")))
    path = write(tmp_path, "mine", "extends: base\nmetadata: {name: mine, title: M, version: 1.0.0, description: m}\n")
    (message,) = errors(path)
    assert message.startswith(f"{base}:31:12: /mappings/0/fields/who: undefined name 'emial'")


def test_before_places_a_new_rule_and_a_name_changes_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mine",
        OVERLAY_HEAD
        + "rules:\n"
        + "  - {name: staff, when: \"email.endswith('@acme.test')\", drop: staff address, before: invalid_email}\n"
        + "  - {name: no_email, drop: nobody to write to}\n",
    )
    preset = relay.load_preset(path)
    names = [r.name for r in preset.rules]
    assert names[:3] == ["no_email", "staff", "invalid_email"]
    settings = preset.resolve_settings(MAILJET_SETTINGS, environ={})
    dropped = relay.render(preset, {"type": "identify", "traits": {}}, settings)
    assert (dropped.rule, dropped.reason) == ("no_email", "nobody to write to")
    path = write(tmp_path, "mine", OVERLAY_HEAD + "rules:\n  - {name: x, when: 'true', drop: d, before: nosuch}\n")
    (message,) = errors(path)
    assert message.startswith(f"{path}:4:46: /rules/0/before: no rule named 'nosuch' to go before")


def test_null_removes_and_responses_of_the_overlay_come_first(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mine",
        OVERLAY_HEAD
        + "fields:\n  properties:\n    last_name: null\n"
        + "delivery:\n  responses:\n    - {status: 404, outcome: fail, hint: mine first}\n",
    )
    preset = relay.load_preset(path)
    event = {"type": "identify", "traits": {"email": "ada@example.com", "first_name": "Ada", "last_name": "L"}}
    _, sent = body(preset, event, MAILJET_SETTINGS)
    assert sent["Properties"] == {"first_name": "Ada"}
    assert preset.delivery.responses[0].hint_source == "mine first"
    assert preset.delivery.responses[1].status_source == "401"  # then the bundled preset's


def test_cycles_and_unknown_bases_are_errors(tmp_path: Path) -> None:
    head = "metadata: {name: NAME, title: T, version: 1.0.0, description: d}\n"
    a = write(tmp_path, "a", "extends: b\n" + head.replace("NAME", "a"))
    write(tmp_path, "b", "extends: a\n" + head.replace("NAME", "b"))
    assert any("extends this file again: a cycle" in m for m in errors(a))
    c = write(tmp_path, "c", "extends: [nosuch]\n" + head.replace("NAME", "c"))
    (message,) = errors(c)
    assert message.startswith(f"{c}:1:11: /extends/0: cannot extend 'nosuch'")
    assert "shared fragments: consent, contact, identity, subscription_events" in message


def test_a_preset_built_only_from_fragments_must_still_say_what_it_sends(tmp_path: Path) -> None:
    path = write(tmp_path, "thin", "extends: [contact, consent]\n")
    messages = errors(path)
    assert any("a preset needs `metadata`" in m for m in messages)
    assert any("a preset needs `requests`" in m for m in messages)


def test_the_bundled_presets_share_their_fragments() -> None:
    for name in ("mailgun", "mailjet", "sendgrid", "brevo", "klaviyo"):
        preset = relay.load_preset(name)
        assert any(file.endswith("_shared/contact.yaml") for file in preset.extends), name
        text = (ROOT / "presets" / name / "preset.yaml").read_text()
        assert "normalize_email" not in text and "consent_withdrawn" not in text, f"{name} copies a fragment"
