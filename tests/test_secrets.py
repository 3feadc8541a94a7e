"""Secrets are redacted by structure: the credential, and every value a template derived
from a secret setting. Nothing else is touched, however short the secret.

Every check runs with a short, a long and a unicode secret, and the strongest
form of the promise is used where it applies: the reviewable output does not
depend on the secret at all (rendering with one secret or another prints the same).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import relay
from relay import CompiledPreset, MockTransport, RenderError, Response, load_preset
from relay.authoring.golden import discover_cases, outcome_of
from relay.cli import main
from relay.delivery.deliver import Deliverer
from relay.runtime.decision import redact
from tests.paths import ROOT

SECRETS = {
    "short": "e",
    "long": "sk-live-" + "9fQ2xLr7Vt0bN3mK8pZ4wY6uC1hJ5dS" * 3,
    "unicode": "ключ€-пароль-🔑",
}
OTHER = "another-secret-value"
IDS = list(SECRETS)
EVENT = ROOT / "examples" / "mailjet-signed-up.json"


def _mailjet_settings(tmp_path: Path, secret: str) -> Path:
    path = tmp_path / f"mailjet-{abs(hash(secret))}.yaml"
    path.write_text(json.dumps({"api_key": "demo-public-key", "secret_key": secret, "list_id": 10001}))
    return path


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("secret", SECRETS.values(), ids=IDS)
@pytest.mark.parametrize("output", ["json", "text"])
def test_render_output_does_not_depend_on_the_secret(tmp_path: Path, secret: str, output: str) -> None:
    shown = {}
    for value in (secret, OTHER):
        settings = _mailjet_settings(tmp_path, value)
        code, text = _cli("render", "mailjet", "--event", str(EVENT), "--settings", str(settings), "--format", output)
        assert code == 0, text
        shown[value] = text
    assert shown[secret] == shown[OTHER]
    assert "Basic <redacted>" in shown[secret] and "jane.doe@example.com" in shown[secret]
    if output == "json":
        request = json.loads(shown[secret])["requests"][-1]
        assert request["url"] == "https://api.mailjet.com/v3/REST/contactslist/10001/managecontact"
        assert request["body"]["Email"] == "jane.doe@example.com" and request["body"]["Action"] == "addforce"


@pytest.mark.parametrize("secret", SECRETS.values(), ids=IDS)
def test_golden_output_does_not_depend_on_the_secret(mailjet: CompiledPreset, secret: str) -> None:
    event = json.loads(EVENT.read_text())

    def pinned(value: str) -> Any:
        return outcome_of(mailjet, {"api_key": "k", "secret_key": value, "list_id": 10001}, event)

    assert pinned(secret) == pinned(OTHER)
    assert pinned(secret)["requests"][-1]["headers"]["Authorization"] == "Basic <redacted>"


def _flow_preset(tmp_path: Path, *, header: bool = False, schema_text: str = '{"type": "object"}') -> CompiledPreset:
    """A preset whose secret reaches the URL path, a variable, a field and the body."""
    schema = tmp_path / f"body-{abs(hash(schema_text))}.schema.json"  # schemas are cached by path
    schema.write_text(schema_text)
    extra_header = '      X-Token: "{{ settings.token }}"\n' if header else ""
    (tmp_path / "preset.yaml").write_text(
        f"""
metadata: {{name: flow, title: Flow, version: 1.0.0, description: Where a secret goes.}}
settings:
  token: {{type: string, required: true, secret: true}}
  list: {{type: string, required: true}}
selectors:
  email: traits.email
rules:
  - {{name: prove, when: email is not none, set: {{proof: "{{{{ settings.token | sha256 }}}}"}}}}
mappings:
  - name: identified
    match: {{type: identify}}
    fields:
      who: "{{{{ email }}}}"
      proof: "{{{{ proof }}}}"
auth: {{type: basic, username: "{{{{ settings.list }}}}", password: "{{{{ settings.token }}}}"}}
requests:
  - name: hook
    method: POST
    url: "https://hooks.example.test/{{{{ settings.token }}}}/lists/{{{{ settings.list }}}}"
    headers:
      X-List: "{{{{ settings.list }}}}"
{extra_header}    encoding: json
    schema: {schema}
    body:
      Email: "{{{{ fields.who }}}}"
      Proof: "{{{{ fields.proof }}}}"
      Note: "list {{{{ settings.list }}}} for {{{{ fields.who }}}}"
      Nested: {{a: "{{{{ settings.list }}}}", b: "{{{{ settings.token ~ '!' }}}}"}}
"""
    )
    return load_preset(tmp_path)


JANE = {"type": "identify", "traits": {"email": "jane@example.com"}}
#: A body schema that refuses the secret-derived ``Nested.b``: its error message quotes the value.
STRICT = '{"type": "object", "properties": {"Nested": {"properties": {"b": {"enum": ["x"]}}}}}'


@pytest.mark.parametrize("secret", SECRETS.values(), ids=IDS)
def test_values_derived_from_a_secret_are_redacted_where_they_stand(tmp_path: Path, secret: str) -> None:
    preset = _flow_preset(tmp_path)
    decision = relay.render(preset, JANE, preset.resolve_settings({"token": secret, "list": "main"}, environ={}))
    assert decision.request is not None and secret in decision.request.url  # what is sent is untouched
    assert decision.to_dict()["requests"] == [
        {
            "step": "hook",
            "method": "POST",
            "url": "https://hooks.example.test/<redacted>/lists/main",
            "headers": {"Content-Type": "application/json", "X-List": "main", "Authorization": "Basic <redacted>"},
            "body": {
                "Email": "jane@example.com",
                "Proof": "<redacted>",  # a hash of the secret, through a variable and a field
                "Note": "list main for jane@example.com",
                "Nested": {"a": "main", "b": "<redacted>"},
            },
        }
    ]


def test_a_secret_in_a_header_template_and_in_the_query_string(tmp_path: Path) -> None:
    preset = _flow_preset(tmp_path, header=True)
    settings = preset.resolve_settings({"token": "tok-1", "list": "main"}, environ={})
    assert relay.render(preset, JANE, settings).to_dict()["requests"][0]["headers"]["X-Token"] == "<redacted>"
    fixture = ROOT / "tests" / "fixtures" / "base_preset.yaml"
    text = fixture.read_text().replace(
        'auth: {type: bearer, token: "{{ settings.token }}"}',
        'auth: {type: api_key, in: query, name: key, value: "{{ settings.token }}"}',
    )
    text = text.replace("../../schemas", str(ROOT / "schemas")).replace("/members", "/members?page=1")
    query = tmp_path / "query"
    query.mkdir()
    (query / "preset.yaml").write_text(text)
    tiny = load_preset(query)
    decision = relay.render(tiny, JANE, tiny.resolve_settings({"token": "e", "list": "example"}, environ={}))
    assert decision.request is not None and decision.request.url.endswith("?page=1&key=e")
    assert (
        decision.to_dict()["requests"][0]["url"]
        == "https://api.example.test/lists/example/members?page=1&key=<redacted>"
    )


def test_a_form_field_holding_a_secret_inside_a_mapping_is_redacted_whole(tmp_path: Path) -> None:
    _flow_preset(tmp_path)
    text = (tmp_path / "preset.yaml").read_text().replace("encoding: json", "encoding: form")
    (tmp_path / "preset.yaml").write_text(text)
    form = load_preset(tmp_path)
    body = relay.render(form, JANE, form.resolve_settings({"token": "t0k", "list": "l"}, environ={})).to_dict()
    assert body["requests"][0]["body"]["Nested"] == "<redacted>"  # a JSON text in one form field
    assert body["requests"][0]["body"]["Email"] == "jane@example.com"


def test_a_credential_an_http_header_cannot_carry_is_a_render_error(tmp_path: Path) -> None:
    preset = _flow_preset(tmp_path, header=True)
    settings = preset.resolve_settings({"token": SECRETS["unicode"], "list": "main"}, environ={})
    with pytest.raises(RenderError) as caught:
        relay.render(preset, JANE, settings)
    assert caught.value.field == "/requests/0/headers/X-Token"
    assert "cannot carry" in str(caught.value) and SECRETS["unicode"] not in str(caught.value)
    # A bearer token is sent as it is, so it cannot hold what a header cannot (Basic auth encodes it).
    sendgrid = load_preset("sendgrid")
    settings = sendgrid.resolve_settings({**discover_cases("sendgrid")[0].settings, "api_key": "ключ"}, environ={})
    with pytest.raises(RenderError, match=r"/requests/\d/auth: header 'Authorization' has characters") as caught:
        relay.render(sendgrid, {**JANE, "context": {"consent": {"canonical": {"marketing": True}}}}, settings)
    assert "ключ" not in str(caught.value)


@pytest.mark.parametrize("secret", SECRETS.values(), ids=IDS)
def test_render_errors_do_not_depend_on_the_secret(tmp_path: Path, secret: str) -> None:
    preset = _flow_preset(tmp_path, schema_text=STRICT.replace('"x"', '"example"'))

    def failure(value: str) -> str:
        with pytest.raises(RenderError) as caught:
            relay.render(preset, JANE, preset.resolve_settings({"token": value, "list": "main"}, environ={}))
        return str(caught.value)

    message = failure(secret)
    assert message == failure(OTHER)
    assert "'<redacted>!' is not one of ['example']" in message  # the schema's own words are kept


@pytest.mark.parametrize("secret", SECRETS.values(), ids=IDS)
def test_a_vendor_echoing_the_secret_is_redacted_without_mangling_the_rest(
    mailjet: CompiledPreset, secret: str
) -> None:
    def vendor_says(value: str) -> str:
        answer = json.dumps({"ErrorMessage": f"API key '{value}' refused for example.com (user@example.com)"})
        transport = MockTransport(lambda _request: Response(401, {"Content-Type": "application/json"}, answer.encode()))
        settings = mailjet.resolve_settings({"api_key": "k", "secret_key": value, "list_id": 1}, environ={})
        deliverer = Deliverer(mailjet, settings, transport, sleep=lambda _s: None, rng=random.Random(1))
        outcome = deliverer.deliver(json.loads(EVENT.read_text()))
        assert outcome.status == "failed"
        return f"{outcome.reason} {outcome.hint}"

    said = vendor_says(secret)
    assert said == vendor_says(OTHER)
    assert "API key '<redacted>' refused for example.com (user@example.com)" in said


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("jane@example.com", "e", "jane@example.com"),  # inside words: left alone
        ("invalid key: e", "e", "invalid key: <redacted>"),
        ("Basic <redacted>", "e", "Basic <redacted>"),  # the marker itself is never re-redacted
        ("key=a%2Bb%2Fc was refused", "a+b/c", "key=<redacted> was refused"),  # as it appears in a URL
        ("'-abc' and x-abc", "-abc", "'<redacted>' and x<redacted>"),  # a boundary only where a word ends
        ("ключ ключи", "ключ", "<redacted> ключи"),
        ("abcd and abc", "abc", "abcd and <redacted>"),
    ],
)
def test_free_text_redaction_replaces_whole_words_in_one_pass(text: str, secret: str, expected: str) -> None:
    assert redact(text, (secret,)) == expected


@pytest.mark.parametrize("secret", SECRETS.values(), ids=IDS)
def test_a_dry_run_and_its_failures_do_not_depend_on_the_secret(tmp_path: Path, secret: str) -> None:
    preset_dir = tmp_path / "preset"
    preset_dir.mkdir()
    _flow_preset(preset_dir, schema_text=STRICT)
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(JANE) + "\n" + json.dumps({"type": "page"}) + "\n")
    printed = {}
    for value in (secret, OTHER):
        settings = tmp_path / "s.json"
        settings.write_text(json.dumps({"token": value, "list": "main"}))
        _code, text = _cli("send", str(preset_dir), str(events), "--settings", str(settings), "--dry-run")
        printed[value] = re.sub(r"\d+\.\d+ s", "T", text)  # the wall time
    assert printed[secret] == printed[OTHER]
    assert "'<redacted>!' is not one of ['x']" in printed[secret]


@pytest.mark.parametrize(
    ("auth", "header", "shown"),
    [
        ('{type: api_key, in: header, name: X-Key, value: "{{ settings.token }}"}', "X-Key", "<redacted>"),
        ('{type: bearer, token: "{{ settings.token }}"}', "Authorization", "Bearer <redacted>"),
        (
            '{type: api_key, in: header, name: Authorization, value: "Token {{ settings.token }}"}',
            "Authorization",
            "Token <redacted>",
        ),
        (
            '{type: basic, username: "{{ settings.list }}", password: "{{ settings.token }}"}',
            "Authorization",
            "Basic <redacted>",
        ),
    ],
)
def test_a_credential_is_hidden_whole_even_with_spaces_in_it(
    tmp_path: Path, auth: str, header: str, shown: str
) -> None:
    fixture = ROOT / "tests" / "fixtures" / "base_preset.yaml"
    text = fixture.read_text().replace('auth: {type: bearer, token: "{{ settings.token }}"}', f"auth: {auth}")
    (tmp_path / "preset.yaml").write_text(text.replace("../../schemas", str(ROOT / "schemas")))
    preset = load_preset(tmp_path)
    settings = preset.resolve_settings({"token": "first-word second-word", "list": "l"}, environ={})
    review = relay.render(preset, JANE, settings).to_dict()["requests"][0]
    assert review["headers"][header] == shown and "first-word" not in json.dumps(review)


def test_a_secret_in_the_url_host_is_shown_and_in_the_path_redacted(tmp_path: Path) -> None:
    # A host travels in clear (DNS, TLS SNI): it cannot hold a secret, e.g. a data centre that a
    # vendor puts in its keys' suffix. The same value in the path is redacted.
    fixture = ROOT / "tests" / "fixtures" / "base_preset.yaml"
    text = fixture.read_text().replace(
        'url: "https://api.example.test/lists/{{ settings.list }}/members"',
        "url: \"https://{{ settings.token.rpartition('-')[2] }}.api.example.test/{{ settings.token }}/members\"",
    )
    (tmp_path / "preset.yaml").write_text(text.replace("../../schemas", str(ROOT / "schemas")))
    preset = load_preset(tmp_path)
    settings = preset.resolve_settings({"token": "0123abcd-us21", "list": "l"}, environ={})
    review = relay.render(preset, JANE, settings).to_dict()["requests"][0]
    assert review["url"] == "https://us21.api.example.test/<redacted>/members"
