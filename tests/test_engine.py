"""Unit tests of the engine: templating, sandbox, selectors, settings, redaction, API."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import relay
from relay import CompiledPreset, PresetErrors, RenderError, SettingsError, load_preset
from relay.errors import TemplateError
from relay.expr.templates import LeafProblem, compile_expression, compile_tree
from relay.preset.source import load_yaml_text
from tests.paths import ROOT

ANY: dict[str, Any] = {"x": None, "event": None}


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{ x }}", {"x": "478"}, "478"),  # stays a string: no literal_eval surprises
        ("{{ x }}", {"x": 478}, 478),
        ("{{ x }}", {"x": None}, None),
        ("{{ x }}", {"x": True}, True),
        ("id-{{ x }}", {"x": 7}, "id-7"),
        ("plain text", {}, "plain text"),
        ("{{ x | to_number }}", {"x": " 12.50 "}, 12.5),
        ("{{ x | to_number }}", {"x": "-3"}, -3),
        ("{{ x | to_json }}", {"x": {"b": "é", "a": [1]}}, '{"b":"é","a":[1]}'),
        ("{{ x | normalize_email }}", {"x": "  A@B.COM "}, "a@b.com"),
        ("{{ x | path_segment }}", {"x": "news letter@mg.example.com"}, "news%20letter@mg.example.com"),
        ("{{ x is valid_email }}", {"x": "jane@example.com"}, True),
        ("{{ x is valid_email }}", {"x": "jane@@example"}, False),
        ("{{ x | compact }}", {"x": {"a": None, "b": 1, "c": {}, "d": []}}, {"b": 1}),
    ],
)
def test_template_leaves(source: str, context: dict[str, Any], expected: Any) -> None:
    problems: list[LeafProblem] = []
    renderer = compile_tree(source, ANY, problems)
    assert problems == []
    assert renderer(context) == expected


def test_null_leaves_are_left_out_of_mappings() -> None:
    renderer = compile_tree({"a": "{{ x }}", "b": "set", "c": {"d": "{{ x }}"}}, ANY, [])
    assert renderer({"x": None}) == {"b": "set", "c": {}}


@pytest.mark.parametrize("bad", ["abc", "", "1e999", True, [1]])
def test_to_number_refuses_what_is_not_a_number(bad: Any) -> None:
    renderer = compile_tree("{{ x | to_number }}", ANY, [])
    with pytest.raises(Exception, match="number"):
        renderer({"x": bad})


def test_event_values_are_never_templates() -> None:
    renderer = compile_tree({"name": "{{ x }}", "greeting": "hi {{ x }}"}, ANY, [])
    out = renderer({"x": "{{ 7*7 }}{% for a in b %}"})
    assert out == {"name": "{{ 7*7 }}{% for a in b %}", "greeting": "hi {{ 7*7 }}{% for a in b %}"}


@pytest.mark.parametrize(
    "source",
    [
        "{{ x.__class__.__mro__ }}",
        "{{ x.__init__.__globals__ }}",
        "{{ x.update({'a': 1}) }}",  # immutable sandbox: no mutating methods
    ],
)
def test_the_sandbox_refuses_unsafe_templates(source: str) -> None:
    renderer = compile_tree(source, ANY, [])
    with pytest.raises(Exception) as caught:
        renderer({"x": {}})
    assert type(caught.value).__name__ in ("LeafRenderError", "SecurityError", "UndefinedError")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ y }}", "undefined name 'y'"),
        ("{{ x | nosuchfilter }}", "unknown filter 'nosuchfilter'"),
        ("{% if x %}{{ x | nosuchfilter }}{% endif %}", "unknown filter"),  # Jinja defers this; we don't
        ("{{ x is nosuchtest }}", "unknown test"),
        ("{{ range(10) }}", "undefined name 'range'"),  # globals are closed
        ("{{ x }", "Jinja syntax error"),
    ],
)
def test_template_problems_are_found_at_load_time(source: str, message: str) -> None:
    problems: list[LeafProblem] = []
    compile_tree(source, ANY, problems)
    assert len(problems) == 1 and message in problems[0].problem.message


def test_a_missing_key_reads_as_null_but_an_attribute_a_value_cannot_have_fails_loudly() -> None:
    assert compile_expression("x.missing", ANY)({"x": {}}) is None
    assert compile_expression("x.missing.deeper", ANY)({"x": {}}) is None
    evaluate = compile_expression("x.name.missing", ANY)
    with pytest.raises(Exception, match="'str object' has no attribute 'missing'"):
        evaluate({"x": {"name": "text"}})


def test_declared_attribute_check() -> None:
    with pytest.raises(TemplateError, match=r"'settings\.nope' is not declared"):
        compile_expression("settings.nope", {"settings": ["api_key"]})


# -- YAML safety -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a: !!python/object/apply:os.system ['echo hacked']\n", "a:\n  b: !custom x\n"])
def test_yaml_tags_are_refused_not_executed(text: str) -> None:
    with pytest.raises(relay.PresetError, match=r"YAML tag .* is not allowed"):
        load_yaml_text(text, "x.yaml")


def test_yaml_locations_are_one_based() -> None:
    doc = load_yaml_text("a:\n  b: [1, 2]\n", "x.yaml")
    assert str(doc.locate("/a/b")) == "x.yaml:2:6"
    assert str(doc.locate("/a/b", key=True)) == "x.yaml:2:3"
    assert str(doc.locate("/a/b/1")) == "x.yaml:2:10"


# -- settings ----------------------------------------------------------------------


def test_settings_errors_name_every_field_and_never_a_secret(mailgun: CompiledPreset) -> None:
    with pytest.raises(SettingsError) as caught:
        mailgun.resolve_settings({"base_url": "https://api.mailgun.com", "lst_address": "x", "api_key": 42}, environ={})
    text = str(caught.value)
    assert "list_address: required setting is missing" in text
    assert "lst_address: unknown setting (did you mean 'list_address'?)" in text
    assert "base_url: 'https://api.mailgun.com' is not one of" in text
    assert "api_key: expected string, got integer" in text


def test_secret_enum_problem_does_not_echo_the_value() -> None:
    from relay.preset.settings import SettingSpec

    spec = SettingSpec(name="k", type="string", secret=True, enum=("a", "b"))
    assert "hunter2" not in (spec.type_problem("hunter2") or "")


def test_secret_from_environment(mailgun: CompiledPreset) -> None:
    settings = mailgun.resolve_settings({"list_address": "l@mg.example.com"}, environ={"MAILGUN_API_KEY": "env-key"})
    assert settings.values["api_key"] == "env-key"
    assert settings.secrets == ("env-key",)
    named = mailgun.resolve_settings(
        {"list_address": "l@x.com", "api_key": {"env": "MY_KEY"}}, environ={"MY_KEY": "k2"}
    )
    assert named.values["api_key"] == "k2"


def test_settings_defaults_apply(mailgun: CompiledPreset) -> None:
    settings = mailgun.resolve_settings({"api_key": "k", "list_address": "l@x.com"}, environ={})
    assert settings.values["base_url"] == "https://api.mailgun.net"


# -- rendering ---------------------------------------------------------------------

JANE = {"type": "identify", "anonymousId": "a", "traits": {"email": "jane@example.com", "name": "Jane"}}


def test_secrets_are_redacted_by_structure_not_by_text(mailgun: CompiledPreset) -> None:
    settings = mailgun.resolve_settings({"api_key": "super-secret-key", "list_address": "l@mg.example.com"}, environ={})
    decision = relay.render(mailgun, JANE, settings)
    assert "super-secret-key" not in json.dumps(decision.to_dict(trace=True))
    assert decision.to_dict()["requests"][-1]["headers"]["Authorization"] == "Basic <redacted>"
    # A value the event itself sent is data, shown as sent, even when it equals a secret:
    # only what a template derived from a secret setting is redacted (tests/test_secrets.py).
    event = {**JANE, "traits": {**JANE["traits"], "company": "super-secret-key"}}
    assert "super-secret-key" in json.dumps(relay.render(mailgun, event, settings).to_dict())


def test_render_errors_name_preset_field_and_event_but_no_secret(mailgun: CompiledPreset) -> None:
    settings = mailgun.resolve_settings({"api_key": "super-secret-key", "list_address": "l@x.com"}, environ={})
    event = {
        "type": "track",
        "event": "Order Completed",
        "messageId": "m-1",
        "properties": {"email": "a@example.com", "revenue": "super-secret-key"},
    }
    with pytest.raises(RenderError) as caught:
        relay.render(mailgun, event, settings)
    text = str(caught.value)
    assert text.startswith("mailgun: /mappings/3/fields/vars/last_order_revenue:")
    assert "messageId m-1" in text and "super-secret-key" not in text


def test_non_object_event_is_a_render_error(mailgun: CompiledPreset) -> None:
    settings = mailgun.resolve_settings({"api_key": "k", "list_address": "l@x.com"}, environ={})
    with pytest.raises(RenderError, match="JSON object"):
        relay.render(mailgun, ["not", "an", "object"], settings)


def test_request_schema_violation_is_reported(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "base_preset.yaml"
    text = (
        fixture.read_text()
        .replace("Action: addforce", "Action: explode")
        .replace("../../schemas", str(fixture.parents[2] / "schemas"))
    )
    (tmp_path / "preset.yaml").write_text(text)
    preset = load_preset(tmp_path)
    settings = preset.resolve_settings({"token": "tok-secret", "list": "l"}, environ={})
    with pytest.raises(relay.RequestSchemaError, match=r"Action: 'explode' is not one of"):
        relay.render(preset, {"type": "identify", "traits": {"email": "a@example.com"}}, settings)


def test_api_key_in_query_is_redacted(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "base_preset.yaml"
    text = fixture.read_text().replace(
        'auth: {type: bearer, token: "{{ settings.token }}"}',
        'auth: {type: api_key, in: query, name: key, value: "{{ settings.token }}"}',
    )
    text = text.replace("../../schemas", str(fixture.parents[2] / "schemas"))
    (tmp_path / "preset.yaml").write_text(text)
    preset = load_preset(tmp_path)
    decision = relay.render(
        preset,
        {"type": "identify", "traits": {"email": "a@example.com"}},
        preset.resolve_settings({"token": "tok-123", "list": "l"}, environ={}),
    )
    assert decision.request is not None and decision.request.url.endswith("?key=tok-123")
    assert decision.to_dict()["requests"][0]["url"].endswith("?key=<redacted>")


def test_rendering_compiles_nothing(mailgun: CompiledPreset, monkeypatch: pytest.MonkeyPatch) -> None:
    from relay.expr import sandbox as templating

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("compiled during render")

    monkeypatch.setattr(templating.ENVIRONMENT, "compile_expression", refuse)
    monkeypatch.setattr(templating.ENVIRONMENT, "from_string", refuse)
    monkeypatch.setattr("jmespath.compile", refuse)
    settings = mailgun.resolve_settings({"api_key": "k", "list_address": "l@x.com"}, environ={})
    assert relay.render(mailgun, JANE, settings).action == "send"


def test_preset_errors_are_all_reported_together() -> None:
    with pytest.raises(PresetErrors) as caught:
        load_preset(Path(__file__).parent / "fixtures" / "broken" / "several_errors.yaml")
    assert len(caught.value.errors) == 3
    assert str(caught.value).startswith("3 errors:")


def test_engine_holds_no_vendor_names() -> None:
    source = " ".join(p.read_text().lower() for p in Path(relay.__file__).parent.rglob("*.py"))
    # Every bundled preset's vendor (its name's first word: facebook_capi -> facebook), and spellings.
    vendors = {p.parent.name.split("_")[0] for p in (ROOT / "presets").glob("*/preset.yaml")} - {"webhook"}
    for vendor in sorted(vendors | {"customer.io", "meta conversions"}):
        assert vendor not in source, f"engine/ mentions {vendor}"


def test_public_api_is_explicit_and_sorted() -> None:
    assert relay.__all__ == sorted(relay.__all__)
    for name in relay.__all__:
        assert hasattr(relay, name)


def test_yaml_parse_cache_round_trips_and_survives_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relay.preset.source import _cache_file, load_yaml

    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RELAY_NO_CACHE", raising=False)
    source = tmp_path / "doc.yaml"
    source.write_text("a:\n  b: [1, 2]\n  c: true\n")
    fresh = load_yaml(source)
    cache = _cache_file(source.read_text())
    assert cache is not None and cache.exists()
    cached = load_yaml(source)
    assert (cached.data, cached.values, cached.keys) == (fresh.data, fresh.values, fresh.keys)
    cache.write_text("{not json")
    assert load_yaml(source).data == fresh.data  # a broken cache entry is ignored, not fatal
    monkeypatch.setenv("RELAY_NO_CACHE", "1")
    assert load_yaml(source).data == fresh.data


def test_dry_run_journal_keeps_nothing() -> None:
    from relay.delivery.journal import NullJournal

    journal = NullJournal()
    journal.record("k", "p", 1, "delivered", None, 200, 1)
    assert journal.status("k") is None and journal.counts() == {}


@pytest.mark.parametrize(
    ("value", "secret", "problem"),
    [
        ("us21", False, None),
        ("US-21", False, "dc: does not match the pattern ^[a-z]+[0-9]+$ (got 'US-21')"),
        ("not-a-key", True, "dc: does not match the pattern ^[a-z]+[0-9]+$"),
    ],
)
def test_a_setting_pattern_is_checked_and_a_secret_never_echoed(value: str, secret: bool, problem: str | None) -> None:
    from relay.errors import SettingsError
    from relay.preset.settings import SettingSpec, resolve_settings

    specs = {"dc": SettingSpec("dc", "string", secret=secret, pattern="^[a-z]+[0-9]+$")}
    if problem is None:
        assert resolve_settings("p", specs, {"dc": value}, environ={}).values == {"dc": value}
        return
    with pytest.raises(SettingsError) as caught:
        resolve_settings("p", specs, {"dc": value}, environ={})
    assert problem in str(caught.value)
    assert not secret or value not in str(caught.value)


def test_a_form_field_carrying_json_is_checked_against_its_content_schema() -> None:
    from relay.preset.schema import BodyValidator

    schema = {
        "type": "object",
        "properties": {
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"type": "array", "items": {"type": "object", "required": ["event_name"]}},
            }
        },
    }
    validator = BodyValidator(schema)
    assert validator.errors({"data": '[{"event_name": "Purchase"}]'}) == []
    (missing,) = validator.errors({"data": '[{"event_time": 1}]'})
    assert list(missing.absolute_path) == ["data", 0] and "'event_name' is a required property" in missing.message
    (garbled,) = validator.errors({"data": "[{"})
    assert list(garbled.absolute_path) == ["data"] and "is not JSON text" in garbled.message
    assert validator.errors({}) == []  # absent: the structural schema decides


def _base_preset_with(tmp_path: Path, old: str, new: str) -> CompiledPreset:
    """The base fixture preset with ``old`` replaced by ``new``, loaded."""
    fixture = Path(__file__).parent / "fixtures" / "base_preset.yaml"
    text = fixture.read_text().replace("../../schemas", str(fixture.parents[2] / "schemas"))
    (tmp_path / "preset.yaml").write_text(text.replace(old, new))
    preset = load_preset(tmp_path)
    assert preset.program is not None
    return preset


def test_a_part_written_twice_in_one_request_is_computed_once(tmp_path: Path) -> None:
    # (email ~ '!') | sha256 appears in three headers; the first is behind a false condition,
    # so the part is computed where it is next needed, and then reused.
    headers = (
        "    headers:\n"
        "      X-First: \"{{ (email ~ '!') | sha256 if settings.list == 'other' else none }}\"\n"
        "      X-Second: \"{{ (email ~ '!') | sha256 }}\"\n"
        "      X-Third: \"{{ ((email ~ '!') | sha256)[:8] }}\"\n"
    )
    preset = _base_preset_with(tmp_path, "    body:\n", headers + "    body:\n")
    assert preset.program is not None
    namespace = preset.program.module.namespace
    digest, calls = namespace["filter_sha256"], []
    namespace["filter_sha256"] = lambda value: calls.append(value) or digest(value)
    settings = preset.resolve_settings({"token": "t", "list": "l"}, environ={})
    request = relay.render(preset, {"type": "identify", "traits": {"email": "a@example.com"}}, settings).request
    expected = hashlib.sha256(b"a@example.com!").hexdigest()
    assert request is not None and "X-First" not in request.headers
    assert (request.headers["X-Second"], request.headers["X-Third"]) == (expected, expected[:8])
    assert calls == ["a@example.com!"]


def test_a_request_that_reads_only_settings_is_made_once_per_run(tmp_path: Path) -> None:
    read = (
        "  - name: list_fields\n"
        "    role: read\n"
        "    method: GET\n"
        '    url: "https://api.example.test/lists/{{ settings.list }}/fields"\n'
        "    as: known_fields\n"
    )
    preset = _base_preset_with(tmp_path, "requests:\n", "requests:\n" + read)
    assert preset.program is not None
    steps = preset.program.steps
    assert steps["/requests/0"].__name__ == "made_once" and steps["/requests/1"].__name__ != "made_once"
    settings = preset.resolve_settings({"token": "t", "list": "l"}, environ={})
    made = [
        relay.render(preset, {"type": "identify", "traits": {"email": f"{n}@example.com"}}, settings).requests
        for n in range(3)
    ]
    reads = [requests[0] for requests in made]
    assert all(read == reads[0] and read.step == "list_fields" for read in reads)
    assert reads[0].url == "https://api.example.test/lists/l/fields"
    assert reads[0].headers == {"Authorization": "Bearer t"}
    assert reads[0].headers is not reads[1].headers  # each caller may change its own
    assert [requests[1].body["Email"] for requests in made] == [f"{n}@example.com" for n in range(3)]
    other = preset.resolve_settings({"token": "t", "list": "m"}, environ={})
    read = relay.render(preset, {"type": "identify", "traits": {"email": "a@example.com"}}, other).requests[0]
    assert read.url == "https://api.example.test/lists/m/fields"
