"""relay.yaml is validated like a preset; `relay init` writes one that works; the delivery loop's service options.

run_stream's two service options are pinned here too: ``pause_on_stop`` (a stop answer
ends the run and leaves the event unrecorded, instead of parking everything after it)
and ``on_recorded`` for events an earlier run recorded (so a resumed feed can advance).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relay.cli import main
from relay.delivery.deadletter import DeadLetter
from relay.delivery.deliver import Deliverer
from relay.delivery.journal import Journal
from relay.delivery.runner import RunControl, run_stream
from relay.delivery.transport import MockTransport, Response
from relay.errors import PresetErrors
from relay.service.config import load_config
from tests.delivery_helpers import MAILGUN_SETTINGS
from tests.service_helpers import write_config

ENV = {"TEST_WRITE_KEY": "wk-test-0123456789"}
#: What the example config (`relay init`, the README) reads from the environment.
EXAMPLE_ENV = {
    "RELAY_WRITE_KEY": "wk-0123456789",
    "MAILGUN_API_KEY": "k",
    "MAILJET_API_KEY": "p",
    "MAILJET_SECRET_KEY": "s",
}


def errors_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PresetErrors) as caught:
        load_config(path, environ=ENV if environ is None else environ)
    return [str(e) for e in caught.value.errors]


def test_every_problem_is_reported_at_its_line_all_at_once(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(
        "sources:\n"
        "  - {name: web, write_key: {env: MISSING_KEY}}\n"  # line 2
        "  - {name: web, write_key: a-literal-key-1}\n"  # line 3: a duplicate name
        "destinations:\n"
        "  - name: mg\n"  # line 5
        "    preset: mailgunn\n"  # line 6: no such preset
        "    settings: {api_key: key-x}\n"
        "  - name: mj\n"
        "    preset: mailjet\n"
        "    settings: {api_key: pub-secret-value, list_id: 1}\n"  # line 10: secret_key missing
        '    filter: "event.type =="\n'  # line 11: does not compile
    )
    found = errors_of(path, environ={})
    text = "\n".join(found)
    assert f"{path}:2:" in text and "MISSING_KEY is not set" in text
    assert f"{path}:3:" in text and "a second source named 'web'" in text
    assert f"{path}:6:" in text and "mailgunn" in text
    assert f"{path}:10:" in text and "secret_key" in text
    assert f"{path}:11:" in text and "filter does not compile" in text
    assert "pub-secret-value" not in text and "a-literal-key-1" not in text


def test_schema_errors_are_located_with_a_did_you_mean(tmp_path: Path) -> None:
    path = write_config(tmp_path, [{"name": "mg", "preset": "mailgun", "settings": MAILGUN_SETTINGS}], servr={})
    [error] = errors_of(path)
    assert "unknown key 'servr'" in error and "did you mean 'server'" in error and str(path) in error
    path.write_text(json.dumps({"sources": [], "destinations": [{"name": "Bad Name", "preset": "x", "settings": {}}]}))
    found = "\n".join(errors_of(path))
    assert "/sources" in found and "/destinations/0/name" in found


def test_a_config_loads_with_secrets_from_the_environment_only_in_memory(tmp_path: Path) -> None:
    settings = tmp_path / "mailgun.settings.yaml"
    settings.write_text("list_address: newsletter@mg.example.com\n")
    path = write_config(tmp_path, [{"name": "mg", "preset": "mailgun", "settings": "mailgun.settings.yaml"}])
    config = load_config(path, environ={**ENV, "MAILGUN_API_KEY": "key-from-env"})
    assert [s.name for s in config.sources] == ["web", "app"]
    assert config.destinations[0].settings.values["api_key"] == "key-from-env"
    assert "key-from-env" in config.secrets and "wk-test-0123456789" in config.secrets
    assert "key-from-env" not in repr(config) and "wk-test" not in repr(config)


def test_relay_init_writes_a_working_example(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "relay.yaml", environ=EXAMPLE_ENV)
    assert [d.name for d in config.destinations] == ["mailgun", "mailjet"]
    assert config.destinations[1].filter is not None and config.kafka is None
    again = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.output


def test_relay_serve_reports_config_errors_located_and_exits_1(tmp_path: Path) -> None:
    path = write_config(tmp_path, [{"name": "mg", "preset": "nope", "settings": {}}])
    result = CliRunner().invoke(main, ["serve", "--config", str(path)], env=ENV)
    assert result.exit_code == 1 and f"{path}:" in result.output and "nope" in result.output


# -- run_stream's service options --------------------------------------------------------------


def _lines(events: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
    return [(n, json.dumps(e).encode()) for n, e in enumerate(events, 1)]


def _identify(n: int) -> dict[str, Any]:
    return {"type": "identify", "userId": f"u{n}", "traits": {"email": f"p{n}@example.com", "name": "P"}}


def _run(mailgun: Any, tmp_path: Path, answers: list[Response], **options: Any) -> tuple[Any, list[int]]:
    transport = MockTransport(lambda request: answers.pop(0) if answers else Response(200, {}, b"{}"))
    settings = mailgun.resolve_settings(MAILGUN_SETTINGS, environ={})
    # One request per event: the scripted answers follow that order (test_batching.py covers batches).
    deliverer = Deliverer(mailgun, settings, transport, sleep=lambda _s: None, batch=False)
    recorded: list[int] = []
    journal, dead_letter = Journal(tmp_path / "j.sqlite"), DeadLetter(tmp_path / "dead.ndjson")
    try:
        stats = run_stream(
            deliverer,
            _lines([_identify(n) for n in range(1, 6)]),
            journal=journal,
            dead_letter=dead_letter,
            control=RunControl(),
            on_recorded=lambda line, _key, _status: recorded.append(line),
            **options,
        )
    finally:
        journal.close()
        dead_letter.close()
    return stats, recorded


def test_pause_on_stop_leaves_the_stopped_event_and_the_rest_unrecorded(mailgun: Any, tmp_path: Path) -> None:
    not_found = Response(404, {}, b'{"message": "member not found"}')
    refused = Response(401, {}, b"Forbidden")
    stats, recorded = _run(mailgun, tmp_path, [not_found, Response(200, {}, b"{}"), refused], pause_on_stop=True)
    assert stats.stopped and "key" in stats.stopped
    assert recorded == [1] and stats.delivered == 1 and stats.parked == 0 and stats.failed == 0
    assert stats.unfinished == 1 and stats.lines == 2  # the stopped event; nothing more was read
    assert not (tmp_path / "dead.ndjson").exists()


def test_without_pause_a_stop_parks_the_rest_as_relay_send_does(mailgun: Any, tmp_path: Path) -> None:
    stats, recorded = _run(mailgun, tmp_path, [Response(401, {}, b"Forbidden")])
    assert stats.failed == 1 and stats.parked == 4 and len(recorded) == 5


def test_events_an_earlier_run_recorded_are_reported_as_recorded(mailgun: Any, tmp_path: Path) -> None:
    _stats, first = _run(mailgun, tmp_path, [])
    stats, again = _run(mailgun, tmp_path, [])
    assert first == [1, 2, 3, 4, 5] and again == [1, 2, 3, 4, 5]
    assert stats.skipped == 5 and stats.requests == 0


def test_the_readme_service_config_is_valid(tmp_path: Path) -> None:
    import re

    from tests.paths import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### The config")
    match = re.search(r"```yaml\n(.*?)```", text[start:], re.DOTALL)
    assert match, "the README's service config block is missing"
    CliRunner().invoke(main, ["init", str(tmp_path)])  # the settings files it names
    (tmp_path / "relay.yaml").write_text(match.group(1), encoding="utf-8")
    config = load_config(tmp_path / "relay.yaml", environ=EXAMPLE_ENV)
    assert [d.name for d in config.destinations] == ["mailgun", "mailjet"] and config.max_connections == 1000
