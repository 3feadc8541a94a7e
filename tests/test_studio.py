"""relay studio's server: every endpoint through Starlette's TestClient, and its security rules.

The page itself is driven in a real browser by test_studio_browser.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

import relay
from relay.cli import main
from relay.studio import Workspace, create_app
from relay.studio.app import TOKEN_HEADER
from relay.studio.curl import curl_command
from tests.paths import ROOT
from tests.studio_helpers import SECRET, make_workspace

TOKEN = "test-token"
AUTH = {TOKEN_HEADER: TOKEN}


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    make_workspace(tmp_path)
    return tmp_path


@pytest.fixture()
def client(root: Path) -> Iterator[TestClient]:
    workspace = Workspace(root / "presets", cwd=root)
    with TestClient(create_app(workspace, TOKEN), base_url="http://127.0.0.1:8123") as test_client:
        yield test_client


def opened(client: TestClient, name: str = "mailjet") -> dict[str, Any]:
    answer = client.get(f"/api/presets/{name}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def event_id(preset: dict[str, Any], label: str) -> str:
    return next(e["id"] for e in preset["events"] if e["label"] == label)


def settings_id(preset: dict[str, Any], label: str) -> str:
    return next(s["id"] for s in preset["settings"] if s["label"].endswith(label))


def preview(
    client: TestClient, text: str, event: dict[str, Any], settings: str | None = None, name: str = "mailjet"
) -> Any:
    payload = {"preset": name, "text": text, "event": event, "settings": settings}
    answer = client.post("/api/preview", headers=AUTH, json=payload)
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- security ---------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/presets", None),
    ("GET", "/api/presets/mailjet", None),
    ("GET", "/api/schema", None),
    ("POST", "/api/preview", {"preset": "mailjet", "text": "", "event": {"json": "{}"}}),
    ("POST", "/api/accept", {"preset": "mailjet", "text": "", "case": "no_email"}),
    ("POST", "/api/save", {"preset": "mailjet", "text": "", "digest": ""}),
    ("POST", "/api/send", {"preset": "mailjet", "text": "", "event": {"json": "{}"}}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("offered", [None, "wrong-token", ""])
def test_every_api_route_needs_the_runs_token(
    client: TestClient, root: Path, method: str, path: str, body: Any, offered: str | None
) -> None:
    before = (root / "presets" / "mailjet" / "preset.yaml").read_bytes()
    headers = {} if offered is None else {TOKEN_HEADER: offered}
    answer = client.request(method, path, headers=headers, json=body)
    assert answer.status_code == 403
    assert "token" in answer.json()["message"]
    assert (root / "presets" / "mailjet" / "preset.yaml").read_bytes() == before


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "192.168.1.10", "[::1]"])
def test_a_foreign_host_header_is_refused(client: TestClient, host: str) -> None:
    """DNS rebinding: a page on another name that resolves to 127.0.0.1 is still refused."""
    for path in ("/", "/api/presets", "/static/studio.js"):
        answer = client.get(path, headers={**AUTH, "Host": f"{host}:8123"})
        assert answer.status_code == 400, (host, path)


def test_localhost_is_accepted_and_the_page_needs_no_token(client: TestClient) -> None:
    assert client.get("/api/presets", headers={**AUTH, "Host": "localhost:8123"}).status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "relay studio" in page.text
    assert client.get("/static/studio.js").status_code == 200
    assert "CodeMirror" in client.get("/static/THIRD-PARTY-LICENSES.txt").text or "codemirror" in (
        client.get("/static/THIRD-PARTY-LICENSES.txt").text
    )


def test_responses_forbid_framing_and_inline_script(client: TestClient) -> None:
    for answer in (client.get("/"), client.get("/api/presets", headers=AUTH)):
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


def test_bodies_that_are_not_json_objects_are_refused(client: TestClient) -> None:
    assert client.post("/api/preview", headers=AUTH, content=b"not json").status_code == 400
    assert client.post("/api/preview", headers=AUTH, json=[1, 2]).status_code == 400
    huge = {"preset": "mailjet", "text": "x" * 2_100_000, "event": {"json": "{}"}}
    assert client.post("/api/preview", headers=AUTH, json=huge).status_code == 413


def test_the_browser_can_only_reach_what_the_workspace_listed(client: TestClient) -> None:
    text = opened(client)["text"]
    for event in ({"id": "example:/etc/passwd"}, {"id": "golden:../../etc/passwd"}):
        assert "no event" in preview(client, text, event)["input_error"]
    out = preview(client, text, {"id": "golden:no_email"}, settings="file:/etc/passwd")
    assert "no settings" in out["input_error"]
    assert client.get("/api/presets/..%2F..%2Fetc", headers=AUTH).status_code in (400, 404)


def _secret_forms() -> list[str]:
    return [SECRET, json.dumps(SECRET)[1:-1], base64.b64encode(f"pub-visible:{SECRET}".encode()).decode()]


def test_secrets_never_appear_in_any_response(client: TestClient) -> None:
    preset = opened(client)
    # A careless preset: the secret in a header, in the body, and in a template that fails.
    leaky = (
        preset["text"]
        .replace(
            "    schema: ../../schemas/mailjet/managecontact.schema.json\n",
            "    schema: ../../schemas/mailjet/managecontact.schema.json\n"
            '    headers:\n      X-Debug: "{{ settings.secret_key }}"\n',
        )
        .replace('Name: "{{ fields.name }}"', 'Name: "{{ settings.secret_key }}"')
    )
    schema = Path(preset["file"]).parent.parent.parent / "schemas" / "mailjet" / "managecontact.schema.json"
    assert schema.is_file()
    settings = settings_id(preset, "secret.settings.yaml")
    seed = event_id(preset, "mailjet-signed-up.json")
    answers = [
        client.get("/api/presets", headers=AUTH),
        client.get("/api/presets/mailjet", headers=AUTH),
        client.post(
            "/api/preview",
            headers=AUTH,
            json={"preset": "mailjet", "text": leaky, "event": {"id": seed}, "settings": settings},
        ),
        client.post(
            "/api/preview",
            headers=AUTH,
            json={"preset": "mailjet", "text": preset["text"], "event": {"id": seed}, "settings": settings},
        ),
        client.post(
            "/api/preview",
            headers=AUTH,
            json={
                "preset": "mailjet",
                "text": preset["text"].replace(
                    "\"{{ fields.action or 'addnoforce' }}\"", '"{{ settings.secret_key | to_number }}"'
                ),
                "event": {"id": seed},
                "settings": settings,
            },
        ),
        client.post(
            "/api/send",
            headers=AUTH,
            json={"preset": "mailjet", "text": leaky, "event": {"id": seed}, "settings": settings},
        ),
    ]
    assert answers[2].json()["review"]["requests"][0]["headers"]["X-Debug"] == "<redacted>"
    assert "<redacted>" in answers[2].json()["review"]["requests"][0]["raw"]
    assert "${MAILJET_SECRET_KEY}" in answers[2].json()["review"]["requests"][0]["curl"]
    assert answers[4].json()["review"]["error"] is not None  # the failing template is reported...
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for form in _secret_forms():
            assert form not in answer.text  # ...and nothing anywhere holds the secret


# -- opening and previewing -------------------------------------------------------------------


def test_a_preset_opens_with_its_text_and_what_can_be_fed_to_it(client: TestClient, root: Path) -> None:
    listing = client.get("/api/presets", headers=AUTH).json()
    assert [p["name"] for p in listing["presets"]] == ["mailgun", "mailjet", "webhook"]
    assert {f["id"] for f in listing["faults"]} >= {"none", "503-once", "503-always"}
    preset = opened(client)
    assert preset["text"] == (root / "presets" / "mailjet" / "preset.yaml").read_text()
    groups = [e["group"] for e in preset["events"]]
    assert groups.index("Golden cases") < groups.index("Examples") < groups.index("Dead letters")
    examples = [e["label"] for e in preset["events"] if e["group"] == "Examples"]
    assert examples[0] == "mailjet-signed-up.json"  # this preset's own examples come first
    assert any(label.startswith("events.ndjson line 3: track Order Completed") for label in examples)
    assert [e["label"] for e in preset["events"] if e["group"] == "Dead letters"] == [
        "mailjet.deadletter.ndjson line 1: HTTP 404"
    ]
    labels = [s["label"] for s in preset["settings"]]
    assert "wrong-list.settings.yaml" in labels and any(label.endswith("mailjet.settings.yaml") for label in labels)
    assert not any("mailgun" in label for label in labels)  # another preset's settings are not offered
    assert client.get("/api/schema", headers=AUTH).json()["title"]


def validate_output(path: Path) -> list[str]:
    result = CliRunner().invoke(main, ["validate", str(path)])
    return [
        line
        for line in result.output.splitlines()
        if line and not line.startswith("ok ") and "presets have" not in line
    ]


def test_errors_are_exactly_what_relay_validate_prints_at_their_line(client: TestClient, root: Path) -> None:
    preset = opened(client)
    broken = (
        preset["text"]
        .replace("    match: {type: track, event: Signed Up}", "    mtch: {type: track, event: Signed Up}")
        .replace('  email: "{{ email }}"', '  email: "{{ email is valid_emial }}"')
    )
    out = preview(client, broken, {"id": "golden:no_email"})
    assert out["review"] is None
    scratch = root / "presets" / "mailjet" / "preset.yaml"
    scratch.write_text(broken, encoding="utf-8")
    assert [e["text"] for e in out["errors"]] == validate_output(scratch)
    line = broken.splitlines().index("    mtch: {type: track, event: Signed Up}") + 1
    assert (out["errors"][0]["line"], out["errors"][0]["col"], out["errors"][0]["pointer"]) == (
        line,
        5,
        "/mappings/0/mtch",
    )
    assert "did you mean 'match'" in out["errors"][0]["hint"]
    syntax = preview(client, preset["text"] + "\n  bad: [unclosed\n", {"id": "golden:no_email"})
    assert syntax["errors"][0]["message"].startswith("YAML syntax error")


def test_the_review_shows_decision_trace_field_origins_and_the_exact_request(client: TestClient) -> None:
    preset = opened(client)
    text = preset["text"]
    out = preview(
        client, text, {"id": event_id(preset, "mailjet-signed-up.json")}, settings_id(preset, "mailjet.settings.yaml")
    )
    review = out["review"]
    assert review["decision"] | {"mapping_line": None} == {
        "action": "send",
        "reason": None,
        "rule": "consent_granted",
        "mapping": "signed_up",
        "mapping_line": None,
        "order_key": "jane.doe@example.com",
    }
    lines = text.splitlines()
    assert lines[review["decision"]["mapping_line"] - 1].strip() == "- name: signed_up"
    email = next(s for s in review["trace"]["selectors"] if s["name"] == "email")
    assert (email["matched"], email["value"], email["transform"]) == (
        "context.traits.email",
        "jane.doe@example.com",
        "value | normalize_email",
    )
    statuses = {r["name"]: (r["status"], r["effect"]) for r in review["trace"]["rules"]}
    assert statuses["consent_granted"] == ("fired", "set subscription")
    assert statuses["no_email"] == ("skipped", "`when` is false")
    signup = next(f for f in review["fields"] if f["field"] == "properties.signup_method")
    assert (signup["origin"], signup["template"], signup["value"]) == (
        "mapping signed_up",
        "{{ signup_method }}",
        "email",
    )
    assert lines[signup["line"] - 1].strip() == 'signup_method: "{{ signup_method }}"'
    assert next(f for f in review["fields"] if f["field"] == "email")["origin"] == "shared fields"
    action = next(b for b in review["body_sources"] if b["field"] == "Action")
    assert (action["template"], action["value"]) == ("{{ fields.action or 'addnoforce' }}", "addforce")
    # The request is relay's own render, byte for byte.
    event = json.loads((ROOT / "examples" / "mailjet-signed-up.json").read_text())
    compiled = relay.load_preset(ROOT / "presets" / "mailjet")
    settings = compiled.resolve_settings(
        {"api_key": "demo-public-key", "secret_key": "demo-secret-key", "list_id": 10001}
    )
    expected = relay.render(compiled, event, settings)
    (request,) = review["requests"]
    assert expected.request is not None
    assert request["raw"] == expected.request.content.decode()
    assert {k: request[k] for k in ("step", "method", "url", "headers", "body")} == expected.to_dict()["requests"][0]
    assert request["headers"]["Authorization"] == "Basic <redacted>"
    assert out["settings"][1] == {"name": "secret_key", "value": "<redacted>", "secret": True, "source": "file"}


def test_a_drop_names_its_reason_and_the_rules_after_it_are_not_reached(client: TestClient) -> None:
    review = preview(client, opened(client)["text"], {"id": "golden:no_email"})["review"]
    assert (review["decision"]["action"], review["decision"]["rule"]) == ("drop", "no_email")
    assert review["requests"] == [] and review["fields"] == []
    assert [r["status"] for r in review["trace"]["rules"]][:2] == ["fired", "not reached"]


def test_a_read_before_write_preset_shows_its_requests_in_order(client: TestClient) -> None:
    text = opened(client, "mailgun")["text"]
    review = preview(client, text, {"id": "golden:read_before_write_keeps_vars"}, name="mailgun")["review"]
    assert [(r["step"], r["method"]) for r in review["requests"]] == [("member", "GET"), ("upsert", "POST")]
    assert "bound to `existing` (this golden case gives it)" in review["requests"][0]["note"]


def test_pasted_and_dead_lettered_events_render_and_bad_json_is_located(client: TestClient) -> None:
    preset = opened(client)
    bad = preview(client, preset["text"], {"json": '{"type": "identify",\n "traits": }'})
    assert bad["input_error"].startswith("pasted event:2:12: not valid JSON")
    pasted = preview(client, preset["text"], {"json": '{"type": "identify", "traits": {"email": "a@example.com"}}'})
    assert pasted["review"]["decision"]["mapping"] == "identified"
    dead = preview(client, preset["text"], {"id": event_id(preset, "mailjet.deadletter.ndjson line 1: HTTP 404")})
    assert dead["review"]["requests"][0]["body"]["Email"] == "dead@example.com"


def test_curl_reproduces_the_request_with_secrets_from_the_environment(tmp_path: Path) -> None:
    """The shell reads the command back into exactly the request's bytes (quotes, $, backticks)."""
    compiled = relay.load_preset(ROOT / "presets" / "mailjet")
    settings = compiled.resolve_settings({"api_key": "pub-1", "secret_key": SECRET, "list_id": 7}, environ={})
    event = {"type": "identify", "traits": {"email": "q@example.com", "name": 'It\'s "$HOME" `x` \\n'}}
    request = relay.render(compiled, event, settings).request
    assert request is not None
    command = curl_command(request, {SECRET: "MAILJET_SECRET_KEY"})
    assert SECRET not in command and '-u "pub-1:${MAILJET_SECRET_KEY}"' in command
    script = tmp_path / "run.sh"
    script.write_text("curl() { printf '%s\\0' \"$@\"; }\n" + command + "\n")
    printed = subprocess.run(
        ["bash", str(script)],
        env={"MAILJET_SECRET_KEY": SECRET, "PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")[:-1]
    args = [a.decode() for a in printed]
    assert args[:3] == ["-X", "POST", request.url]
    assert args[args.index("-u") + 1] == f"pub-1:{SECRET}"
    assert args[args.index("--data-raw") + 1].encode() == request.content


# -- writing ----------------------------------------------------------------------------------


def test_accept_as_golden_writes_expected_like_golden_update_keeping_comments(client: TestClient, root: Path) -> None:
    case_file = root / "presets" / "mailjet" / "golden" / "seed_signed_up.yaml"
    case_file.write_text("# pinned by seed 001: keep this comment\n" + case_file.read_text(), encoding="utf-8")
    text = opened(client)["text"].replace('Name: "{{ fields.name }}"', 'Name: "{{ fields.name | upper }}"')
    before = preview(client, text, {"id": "golden:seed_signed_up"})["golden"]
    assert (
        not before["ok"]
        and '-        "Name": "Jane Doe"' in before["diff"]
        and '+        "Name": "JANE DOE"' in before["diff"]
    )
    answer = client.post(
        "/api/accept", headers=AUTH, json={"preset": "mailjet", "text": text, "case": "seed_signed_up"}
    )
    assert answer.status_code == 200 and answer.json()["unsaved_preset"] is True
    written = case_file.read_text()
    assert written.startswith("# pinned by seed 001: keep this comment\n") and "Name: JANE DOE" in written
    assert preview(client, text, {"id": "golden:seed_signed_up"})["golden"]["ok"]
    broken = client.post(
        "/api/accept", headers=AUTH, json={"preset": "mailjet", "text": "metadata: {", "case": "seed_signed_up"}
    )
    assert broken.status_code == 409 and broken.json()["reason"] == "invalid"


def test_save_keeps_the_text_exactly_and_never_silently_replaces_a_valid_preset(client: TestClient, root: Path) -> None:
    path = root / "presets" / "mailjet" / "preset.yaml"
    preset = opened(client)
    edited = preset["text"].replace(
        "  backoff: {base: 0.5, max: 30}", "  backoff: {base: 0.5, max: 31}   # this comment stays"
    )
    saved = client.post(
        "/api/save", headers=AUTH, json={"preset": "mailjet", "text": edited, "digest": preset["digest"]}
    )
    assert saved.status_code == 200 and path.read_text() == edited
    digest = saved.json()["digest"]
    invalid = edited.replace("  backoff: {base", "  backof: {base")
    refused = client.post("/api/save", headers=AUTH, json={"preset": "mailjet", "text": invalid, "digest": digest})
    assert refused.status_code == 409 and refused.json()["reason"] == "invalid" and path.read_text() == edited
    assert "did you mean 'backoff'" in refused.json()["errors"][0]["text"]
    forced = client.post(
        "/api/save", headers=AUTH, json={"preset": "mailjet", "text": invalid, "digest": digest, "allow_invalid": True}
    )
    assert forced.status_code == 200 and path.read_text() == invalid
    # Invalid on disk already: saving another invalid text needs no confirmation.
    again = client.post(
        "/api/save", headers=AUTH, json={"preset": "mailjet", "text": invalid + "\n", "digest": forced.json()["digest"]}
    )
    assert again.status_code == 200
    path.write_text(edited, encoding="utf-8")  # someone else edits the file meanwhile
    stale = client.post(
        "/api/save", headers=AUTH, json={"preset": "mailjet", "text": edited, "digest": again.json()["digest"]}
    )
    assert stale.status_code == 409 and stale.json()["reason"] == "changed"
    assert not list(path.parent.glob(".preset.yaml.*.tmp"))


def test_bundled_presets_of_an_installed_relay_are_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from relay.studio import workspace as module

    monkeypatch.setattr(module, "_installed_bundle", lambda root: True)
    entry = Workspace().preset("mailjet")
    assert "read-only" in entry.read_only
    with TestClient(create_app(Workspace(), TOKEN), base_url="http://127.0.0.1:8123") as test_client:
        answer = test_client.post("/api/save", headers=AUTH, json={"preset": "mailjet", "text": "", "digest": ""})
        assert answer.status_code == 409 and answer.json()["reason"] == "read_only"


# -- send to fake --------------------------------------------------------------------------------


def send(
    client: TestClient,
    preset: dict[str, Any],
    event: str,
    settings: str | None,
    fault: str = "none",
    name: str = "mailjet",
) -> Any:
    payload = {"preset": name, "text": preset["text"], "event": {"id": event}, "settings": settings, "fault": fault}
    answer = client.post("/api/send", headers=AUTH, json=payload)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_send_to_fake_delivers_retries_with_waits_and_dead_letters_with_the_hint(client: TestClient) -> None:
    preset = opened(client)
    seed, good = event_id(preset, "mailjet-signed-up.json"), settings_id(preset, "mailjet.settings.yaml")
    delivered = send(client, preset, seed, good)
    assert (delivered["outcome"], delivered["http_status"], delivered["attempts"]) == ("delivered", 201, 1)
    assert delivered["fake"]["state"]["rows"][0][0] == "jane.doe@example.com"
    retried = send(client, preset, seed, good, fault="503-once")
    assert (retried["outcome"], retried["retries"]) == ("delivered", 1)
    assert [x["status"] for x in retried["exchanges"]] == [503, 201]
    assert retried["exchanges"][0]["wait"] == retried["waits"][0] > 0
    exhausted = send(client, preset, seed, good, fault="503-always")
    assert (exhausted["outcome"], exhausted["attempts"], len(exhausted["waits"])) == ("dead letter", 6, 5)
    assert "until the delivery deadline (86400 s); studio stops after 6 attempts" in exhausted["note"]
    assert all(0 < wait <= 30 for wait in exhausted["waits"])  # the preset's backoff, capped at its max
    missing_list = send(client, preset, seed, settings_id(preset, "wrong-list.settings.yaml"))
    assert (missing_list["outcome"], missing_list["http_status"]) == ("dead letter", 404)
    assert "Contact list 99 does not exist" in missing_list["hint"]
    dropped = send(client, preset, "golden:no_email", None)
    assert (dropped["outcome"], dropped["exchanges"]) == ("dropped", [])
    bad = client.post(
        "/api/send",
        headers=AUTH,
        json={"preset": "mailjet", "text": preset["text"], "event": {"id": seed}, "fault": "x"},
    )
    assert bad.status_code == 400


def test_a_preset_without_a_vendor_fake_is_sent_to_a_recording_fake(client: TestClient) -> None:
    preset = opened(client, "webhook")
    case = next(e["id"] for e in preset["events"] if e["id"] == "golden:identify_signed")
    result = send(client, preset, case, None, name="webhook")
    assert result["outcome"] == "delivered" and result["fake"]["kind"].startswith("recording fake")
    assert result["fake"]["state"]["rows"][0][1] == "POST"


# -- the command ----------------------------------------------------------------------------------


def test_relay_studio_serves_the_page_and_prints_its_url(root: Path) -> None:
    command = [sys.executable, "-m", "relay", "studio", "--no-open", "--presets", str(root / "presets")]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=root) as process:
        try:
            assert process.stderr is not None
            first = process.stderr.readline()
            match = re.search(r"(http://127\.0\.0\.1:(\d+))/\?token=(\S+)", first)
            assert match, first
            answer = None
            for _ in range(100):
                try:
                    answer = httpx.get(f"{match[1]}/api/presets", headers={TOKEN_HEADER: match[3]}, timeout=2)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert answer is not None and answer.status_code == 200
            assert [p["name"] for p in answer.json()["presets"]] == ["mailgun", "mailjet", "webhook"]
            assert httpx.get(f"{match[1]}/api/presets", timeout=2).status_code == 403
            assert "relay studio" in httpx.get(f"{match[1]}/", timeout=2).text
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_a_templated_host_reaches_the_presets_fake(tmp_path: Path) -> None:
    """Mailchimp's host comes from the key's data centre: studio routes it like `relay fake` does."""
    make_workspace(tmp_path, ("mailchimp",))
    workspace = Workspace(tmp_path / "presets", cwd=tmp_path)
    with TestClient(create_app(workspace, TOKEN), base_url="http://127.0.0.1:8123") as client:
        preset = opened(client, "mailchimp")
        result = send(client, preset, "golden:identify_consent_granted", None, name="mailchimp")
    assert result["outcome"] == "delivered", result
    assert [(x["method"], x["status"]) for x in result["exchanges"]] == [("PUT", 200)]
    assert ".api.mailchimp.com/3.0/lists/" in result["exchanges"][0]["url"]


def test_the_review_shows_how_a_batching_preset_sends_the_event_batched(client: TestClient) -> None:
    preset = opened(client)
    review = preview(client, preset["text"], {"id": event_id(preset, "mailjet-signed-up.json")})["review"]
    (single,) = review["requests"]
    (bulk,) = review["batched"]
    assert single["url"].endswith("/managecontact") and bulk["url"].endswith("/managemanycontacts")
    assert bulk["title"] == "1. contact (bulk)" and bulk["body"]["Contacts"][0]["Email"] == "jane.doe@example.com"
    assert bulk["headers"]["Authorization"] == "Basic <redacted>"
    webhook = opened(client, "webhook")
    case = next(e["id"] for e in webhook["events"] if e["id"] == "golden:identify_signed")
    assert "batched" not in preview(client, webhook["text"], {"id": case}, name="webhook")["review"]
