"""relay as an installed package: bundled data, `relay new` placement, the CLI's exit codes.

The wheel itself is built and run from outside the checkout by `.ci/run`; these
tests pin the behaviour that makes that work, in-process.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import relay
from relay import bundled
from relay.cli import main
from tests.paths import ROOT


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.output


def test_bundled_data_is_found_through_the_package() -> None:
    assert (bundled.presets_dir() / "mailjet" / "preset.yaml").is_file()
    assert (bundled.schemas_dir() / "mailjet" / "managecontact.schema.json").is_file()
    assert (bundled.goldens_dir() / "mailjet").is_dir()
    assert (bundled.examples_dir() / "demo.yaml").is_file()
    assert json.loads(bundled.preset_schema_path().read_text())["title"]


def test_load_preset_takes_a_bundled_name_or_a_path() -> None:
    by_name = relay.load_preset("mailjet")
    by_path = relay.load_preset(ROOT / "presets" / "mailjet")
    assert by_name.name == by_path.name == "mailjet"
    with pytest.raises(relay.PresetNotFound, match=r"known presets: .*mailgun"):
        relay.load_preset("no_such_preset")


def test_the_public_api_renders_decides_and_builds() -> None:
    preset = relay.load_preset("mailjet")
    settings = preset.resolve_settings({"api_key": "k", "secret_key": "s", "list_id": 1}, environ={})
    event = json.loads((ROOT / "examples" / "mailjet-signed-up.json").read_text())
    plan = relay.decide(preset, event, settings)
    assert (plan.action, plan.rule, plan.order_key) == ("send", "consent_granted", "jane.doe@example.com")
    (step,) = preset.steps
    request = relay.build(preset, plan, step, now=0.0)
    assert request is not None
    assert request.content == relay.render(preset, event, settings, now=0.0).request.content  # type: ignore[union-attr]
    assert json.loads(request.content)["Action"] == "addforce"


def test_new_outside_a_checkout_writes_into_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_PRESETS", raising=False)
    code, out = run("new", "acme")
    assert code == 0, out
    assert (tmp_path / "acme" / "preset.yaml").is_file()
    assert (tmp_path / "acme" / "golden" / "no_email.yaml").is_file()
    assert (tmp_path / "preset.schema.json").is_file()  # so the editor line works offline
    assert not (bundled.presets_dir() / "acme").exists()
    # Every command it suggests names the directory it wrote to.
    assert "relay validate --presets . acme" in out and "relay golden --presets . acme" in out
    assert "# Try it:   relay validate --presets . acme" in (tmp_path / "acme" / "preset.yaml").read_text()
    assert run("validate", "--presets", ".")[0] == 0
    assert run("golden", "--presets", ".", "acme")[0] == 0


def test_new_keeps_the_presets_directory_the_user_gave_in_its_hints(tmp_path: Path) -> None:
    code, out = run("new", "acme", "--presets", str(tmp_path / "mine"))
    assert code == 0, out
    assert f"relay golden --presets {tmp_path / 'mine'} acme" in out


def test_new_refuses_a_bad_name_or_an_existing_preset(tmp_path: Path) -> None:
    assert run("new", "Bad-Name", "--presets", str(tmp_path)) == (
        2,
        "error: preset names are lower-case identifiers (letters, digits, _), not 'Bad-Name'\n",
    )
    assert run("new", "acme", "--presets", str(tmp_path))[0] == 0
    code, out = run("new", "acme", "--presets", str(tmp_path))
    assert code == 2 and "already exists" in out


def test_a_missing_event_file_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    settings = ROOT / "examples" / "mailjet.settings.yaml"
    code, out = run("render", "mailjet", "--event", str(tmp_path / "nope.json"), "--settings", str(settings))
    assert code == 2
    assert out == f"error: cannot read event file {tmp_path / 'nope.json'}: No such file or directory\n"
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"name": "caf\xe9"}')
    code, out = run("render", "mailjet", "--event", str(bad), "--settings", str(settings))
    assert code == 2 and "not UTF-8" in out


def test_a_missing_events_file_for_send_is_exit_2(tmp_path: Path) -> None:
    settings = ROOT / "examples" / "mailjet.settings.yaml"
    code, out = run("send", "mailjet", str(tmp_path / "nope.ndjson"), "--settings", str(settings), "--dry-run")
    assert code == 2 and "cannot read events file" in out


def test_render_errors_carry_the_location_of_the_failing_template(tmp_path: Path) -> None:
    event = tmp_path / "order.json"
    event.write_text(
        json.dumps(
            {
                "type": "track",
                "event": "Order Completed",
                "properties": {"revenue": "forty"},
                "traits": {"email": "jane@example.com"},
            }
        )
    )
    settings = ROOT / "examples" / "mailgun.settings.yaml"
    code, out = run("render", "mailgun", "--event", str(event), "--settings", str(settings))
    assert code == 1
    line = next(
        n
        for n, text in enumerate((ROOT / "presets/mailgun/preset.yaml").read_text().splitlines(), 1)
        if "last_order_revenue:" in text
    )
    assert out.startswith(f"error: presets/mailgun/preset.yaml:{line}:")
    assert "/mappings/3/fields/vars/last_order_revenue: value is not a number" in out


def test_demo_takes_presets_from_the_directory_given(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(ROOT / "presets", mine, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    for preset in mine.glob("*/preset.yaml"):
        preset.write_text(preset.read_text().replace("../../schemas", str(ROOT / "schemas")))
    title = mine / "mailgun" / "preset.yaml"
    title.write_text(title.read_text().replace("title: Mailgun mailing-list members", "title: My own Mailgun"))
    config = tmp_path / "demo.yaml"
    demo = (ROOT / "examples" / "demo.yaml").read_text()
    demo = demo.replace("events: events.ndjson", f"events: {ROOT / 'examples' / 'events.ndjson'}")
    config.write_text(re.sub(r"\n +rate_limit: 5 .*", "", demo))  # no throttled fake: keep the test quick
    code, out = run("demo", "--presets", str(mine), "--config", str(config), "--concurrency", "2")
    assert code == 0, out
    assert "My own Mailgun" in out
