"""The relay command line, driven in-process through click's runner."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from relay.cli import main
from tests.paths import ROOT

BROKEN = ROOT / "tests" / "fixtures" / "broken"


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.output


def write_settings(tmp_path: Path) -> Path:
    path = tmp_path / "mailgun.yaml"
    path.write_text("api_key: key-very-secret\nlist_address: newsletter@mg.example.com\n")
    return path


SEED_EVENT = {
    "type": "identify",
    "anonymousId": "a1b2c3",
    "traits": {"email": "Jane@Example.com", "name": "Jane Doe"},
    "context": {"consent": {"canonical": {"marketing": True}}},
}


def test_validate_passes_on_bundled_presets() -> None:
    code, out = run("validate")
    assert code == 0
    assert "ok presets/mailgun/preset.yaml" in out and "ok presets/mailjet/preset.yaml" in out


def test_validate_fails_with_located_errors() -> None:
    code, out = run("validate", str(BROKEN / "several_errors.yaml"), str(BROKEN / "typo_in_key.yaml"))
    assert code == 1
    assert "several_errors.yaml:34:12: /mappings/0/fields/who: unknown filter 'lowercase'" in out
    assert "typo_in_key.yaml:37:5: /requests/0/shema: unknown key 'shema'" in out
    assert "2 of 2 presets have errors" in out


def test_render_json_has_exactly_the_documented_keys(tmp_path: Path) -> None:
    code, out = run(
        "render",
        "mailgun",
        "--event",
        "-",
        "--settings",
        str(write_settings(tmp_path)),
        "--format",
        "json",
        input=json.dumps(SEED_EVENT),
    )
    assert code == 0, out
    decision = json.loads(out)
    assert list(decision) == ["decision", "reason", "rule", "requests", "batched"]  # mailgun batches
    assert decision["decision"] == "send"
    [read, bulk] = decision["batched"]
    assert (read["step"], bulk["step"], bulk["events"]) == ("member", "upsert", [0])
    assert bulk["url"].endswith("/members.json") and "key-very-secret" not in json.dumps(bulk)
    member, upsert = decision["requests"]  # mailgun reads the member before it writes
    assert (member["step"], member["method"], upsert["step"]) == ("member", "GET", "upsert")
    assert upsert["body"]["address"] == "jane@example.com"
    assert upsert["headers"]["Authorization"] == "Basic <redacted>"
    assert "key-very-secret" not in out


def test_render_text_shows_trace_and_drops(tmp_path: Path) -> None:
    event = tmp_path / "page.json"
    event.write_text(json.dumps({"type": "page", "anonymousId": "x"}))
    code, out = run("render", "mailgun", "--event", str(event), "--settings", str(write_settings(tmp_path)))
    assert code == 0
    assert out.startswith("DROP  anonymous page view")
    assert "rule anonymous_page_view: drop" in out
    assert "selector email: (no match)" in out


def test_render_reports_bad_event_and_bad_settings(tmp_path: Path) -> None:
    settings = write_settings(tmp_path)
    code, out = run("render", "mailgun", "--event", "-", "--settings", str(settings), input="{not json")
    assert code == 1 and "not valid JSON" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("api_key: key-very-secret\nbase_url: https://api.mailgun.org\n")
    code, out = run("render", "mailgun", "--event", "-", "--settings", str(bad), input="{}")
    assert code == 2
    assert "list_address: required setting is missing" in out and "base_url:" in out
    assert "key-very-secret" not in out


def test_golden_passes_and_reports_a_diff_on_mismatch(tmp_path: Path) -> None:
    code, out = run("golden")
    assert code == 0 and " 0 failed" in out
    root = tmp_path / "presets"
    shutil.copytree(ROOT / "presets" / "mailjet", root / "mailjet")
    (root / "mailjet" / "preset.yaml").write_text(
        (root / "mailjet" / "preset.yaml")
        .read_text()
        .replace("../../schemas", str(ROOT / "schemas"))
        .replace("Action: \"{{ fields.action or 'addnoforce' }}\"", "Action: \"{{ fields.action or 'addforce' }}\"")
    )
    shutil.copytree(ROOT / "tests" / "golden" / "mailjet", root / "mailjet" / "golden")
    code, out = run("golden", "--presets", str(root))
    assert code == 1
    assert "FAIL mailjet/identify_consent_unknown" in out
    assert re.search(r'^- +"Action": "addnoforce",$', out, re.M) and re.search(
        r'^\+ +"Action": "addforce",$', out, re.M
    )
    code, out = run("golden", "--presets", str(root), "--update")
    assert code == 0 and "updated mailjet/identify_consent_unknown" in out
    assert run("golden", "--presets", str(root))[0] == 0


def test_unknown_preset_is_a_usage_error(tmp_path: Path) -> None:
    code, out = run("render", "nope", "--event", "-", "--settings", str(write_settings(tmp_path)), input="{}")
    assert code == 2 and "no preset 'nope'" in out


def test_compile_prints_the_generated_python_pointing_at_the_yaml() -> None:
    code, out = run("compile", "mailgun")
    assert code == 0
    compile(out, "mailgun-program", "exec")  # what it prints is the Python relay runs
    assert "def decide(n_event, n_settings, n_constants, S, T):" in out
    origins = re.findall(r"^\s*# (/\S*)  \((\S+\.yaml):(\d+)\)$", out, flags=re.M)
    assert len(origins) > 20
    for pointer, file, line in origins:
        path = Path(file) if Path(file).is_absolute() else ROOT / file
        lines = path.read_text().splitlines()
        # the node's own line, or (a mapping's value) the line of its key just above it
        above, own = lines[int(line) - 2], lines[int(line) - 1]
        keys = [part for part in pointer.split("/") if part]  # or (inherited) a parent's
        assert any(key in own + above for key in keys) or own.lstrip().startswith("-"), (pointer, file, line, own)
    code, out = run("compile", "no-such-preset")
    assert code != 0
