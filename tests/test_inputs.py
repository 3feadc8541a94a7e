"""Inputs a user gets wrong: the ``relay:`` run options, a broken settings file, a bad
``--redirect``, an unreachable host; and how relay's requests name themselves."""

from __future__ import annotations

import json
import socket
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay import RunOptions, load_settings_file
from relay.bundled import run_options_schema_path
from relay.cli import main
from relay.delivery.transport import HTTPTransport, user_agent
from relay.fakes import FakeServer
from relay.fakes.server import FakeRequest, FakeResponse, FakeVendor
from relay.preset.settings import split_run_options
from relay.runtime.decision import Request
from tests.paths import ROOT

EVENT = ROOT / "examples" / "mailjet-signed-up.json"
MAILJET = "api_key: demo-public-key\nsecret_key: demo-secret-key\nlist_id: 10001\n"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def render_with(tmp_path: Path, settings_text: str, name: str = "s.yaml") -> tuple[int, str]:
    settings = tmp_path / name
    settings.write_text(settings_text)
    return run("render", "mailjet", "--event", str(EVENT), "--settings", str(settings))


# (the relay: block, every message it must produce)
BAD_RUN_OPTIONS = [
    (
        "relay: {rate_limit: {rate: -1}}",
        ["s.yaml:4:28: /relay/rate_limit/rate: -1 is less than or equal to the minimum of 0"],
    ),
    ("relay: {rate_limit: {rate: fast}}", ["/relay/rate_limit/rate: 'fast' is not of type 'number'"]),
    (
        "relay: {rate_limit: {rate: 2, brust: 3}}",
        ["/relay/rate_limit/brust: unknown key 'brust' (hint: did you mean 'burst'?)"],
    ),
    ("relay: {max_attempts: 0}", ["/relay/max_attempts: 0 is less than the minimum of 1"]),
    ("relay: {max_attemps: 3}", ["/relay/max_attemps: unknown key 'max_attemps' (hint: did you mean 'max_attempts'?)"]),
    (
        "relay: {rate_limit: {burst: 0, rate: 100000}}",
        ["/relay/rate_limit/burst: 0 is less", "/relay/rate_limit/rate: 100000 is greater"],
    ),
    ("relay: [1, 2]", ["/relay: [1, 2] is not of type 'object'"]),
    ("relay: {deadline: -5}", ["/relay/deadline: -5 is less than or equal to the minimum of 0"]),
    (
        "relay: {deadline: forever, dedline: 3}",
        ["/relay/deadline: 'forever' is not of type 'number'", "did you mean 'deadline'?"],
    ),
    (
        "relay: {max_attempts: 2.5}\nlist_idd: 3",
        ["/relay/max_attempts: 2.5 is not of type 'integer'", "list_idd: unknown setting"],
    ),
]


@pytest.mark.parametrize(("block", "messages"), BAD_RUN_OPTIONS, ids=[b for b, _ in BAD_RUN_OPTIONS])
def test_bad_run_options_are_all_reported_with_exit_2(tmp_path: Path, block: str, messages: list[str]) -> None:
    code, out = render_with(tmp_path, MAILJET + block + "\n")
    assert code == 2, out
    assert out.startswith(f"error: settings file {tmp_path / 's.yaml'} does not fit preset 'mailjet':")
    for message in messages:
        assert message in out, out
    assert "Traceback" not in out


def test_good_run_options_are_read() -> None:
    raw = {
        "token": "t",
        "relay": {"rate_limit": {"rate": 2.5, "burst": 4}, "max_attempts": 3, "deadline": 60, "batch": False},
    }
    rest, options = split_run_options(raw)
    assert rest == {"token": "t"}
    assert options == RunOptions(rate=2.5, burst=4, max_attempts=3, deadline=60, batch=False)
    assert split_run_options({"relay": {}})[1] == RunOptions()


def test_the_run_options_schema_ships_with_the_package() -> None:
    schema = json.loads(run_options_schema_path().read_text(encoding="utf-8"))
    assert set(schema["properties"]) == {"rate_limit", "max_attempts", "deadline", "batch"}
    assert schema["additionalProperties"] is False


def test_a_settings_syntax_error_names_the_settings_file(tmp_path: Path) -> None:
    code, out = render_with(tmp_path, "api_key: [unclosed\n")
    assert code == 2
    assert out.startswith(f"error: settings file {tmp_path / 's.yaml'} cannot be used:")
    assert f"{tmp_path / 's.yaml'}:2:1: /: YAML syntax error" in out and "preset" not in out.splitlines()[0]
    code, out = render_with(tmp_path, '{"api_key": ', name="s.json")
    assert code == 2 and f"{tmp_path / 's.json'}:1:13: invalid JSON" in out


def test_a_settings_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(
        Exception, match=r"settings file .* cannot be used:\n  .*s.yaml:1:1: settings must be a mapping"
    ):
        load_settings_file(path)


@pytest.mark.parametrize(
    ("redirect", "shown"),
    [
        ("https://api.mailjet.com", "takes FROM=TO, got 'https://api.mailjet.com'"),
        ("https://api.mailjet.com=127.0.0.1:9", "TO '127.0.0.1:9' is not an http(s) URL"),
        ("https://api.mailjet.com=http://127.0.0.1:99999", "TO 'http://127.0.0.1:99999' is not a valid URL"),
        ("https://api.mailjet.com=http://", "TO 'http://' has no host"),
        ("api.mailjet.com=http://127.0.0.1:9", "FROM 'api.mailjet.com' is not an http(s) URL"),
        ("https://api.mailjet.com=http://local host:9", "TO 'http://local host:9' "),
    ],
)
def test_a_malformed_redirect_is_a_usage_error_showing_the_value(tmp_path: Path, redirect: str, shown: str) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text(MAILJET)
    for command in (["check", "mailjet"], ["send", "mailjet", str(EVENT)]):
        code, out = run(*command, "--settings", str(settings), "--redirect", redirect)
        assert code == 2, out
        assert "Invalid value for --redirect" in out and shown in out


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_check_says_the_host_was_unreachable_not_run_with_fix(tmp_path: Path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text(MAILJET + "relay: {max_attempts: 1}\n")
    target = f"http://127.0.0.1:{_closed_port()}"
    code, out = run("check", "mailjet", "--settings", str(settings), "--redirect", f"https://api.mailjet.com={target}")
    assert code == 1
    assert f"{target} was unreachable" in out and "--fix" not in out


class _Headers(FakeVendor):
    name = "headers"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, str]] = []

    def handle(self, request: FakeRequest) -> FakeResponse:
        self.seen.append(request.headers)
        return FakeResponse(200, b"{}", {"Content-Type": "application/json"})


def test_requests_name_themselves_relay_and_version() -> None:
    vendor = _Headers()
    transport = HTTPTransport()
    with FakeServer(vendor) as server:
        for headers in ({}, {"User-Agent": "relay-webhook/1"}):
            request = Request("GET", f"{server.url}/x", headers, None, b"", "json")
            assert transport.send(request).status == 200
    transport.close()
    assert user_agent() == f"relay/{version('relay')}"
    assert [seen["user-agent"] for seen in vendor.seen] == [user_agent(), "relay-webhook/1"]  # a preset's own wins
