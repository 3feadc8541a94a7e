"""The bench stays honest: its baselines do relay's work, and its pieces run.

The hand-written integrations must produce exactly relay's outcome for every generated event: the
same drops, and the same ``Request`` (method, URL, headers in order, decoded body, bytes,
encoding, credential headers), on both the repeated- and the distinct-contacts stream, and along
the send path of a read-before-write preset. No test here asserts a time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

import relay
from bench.common import NOW, PRESETS, Duel, differences, duel, engine_outcome, load
from bench.delivery import fake_process, http_client_run, relay_run, requests_run
from bench.events import generate, stored_member
from bench.handwritten import HANDWRITTEN, Drop, MemberPlan, ReadsBeforeWrite, Send
from bench.peers import NODE_DIR, PEERS, _check, _run_peer
from bench.render import baseline_send_path, lookup_presets, relay_send_path, with_answers
from bench.run import main
from tests.paths import ROOT

STREAMS = {"repeated contacts": {}, "distinct contacts": {"distinct": "t0"}}


def _events(stream: str, count: int = 600) -> list[dict[str, Any]]:
    return list(generate(count, seed=7, **STREAMS[stream]))


def test_the_bench_covers_every_bundled_preset() -> None:
    bundled = sorted(p.parent.name for p in (ROOT / "presets").glob("*/preset.yaml"))
    assert sorted(PRESETS) == bundled
    assert sorted(HANDWRITTEN) == bundled


@pytest.mark.parametrize("stream", sorted(STREAMS))
@pytest.mark.parametrize("name", PRESETS)
def test_handwritten_render_equals_relay_request_for_request(name: str, stream: str) -> None:
    preset, settings = load(name)
    hand = HANDWRITTEN[name](settings.values)
    sends = 0
    for event in _events(stream):
        ours = engine_outcome(relay.render(preset, event, settings, now=NOW))
        theirs = hand.render(event, NOW)
        assert not differences(ours, theirs), (event["messageId"], differences(ours, theirs))
        assert ours == theirs
        sends += isinstance(ours, Send)
    assert sends > 100, name  # the stream exercises real sends, not only drops


@pytest.mark.parametrize("stream", sorted(STREAMS))
@pytest.mark.parametrize("name", lookup_presets())
def test_handwritten_send_path_equals_relay_with_a_lookup_answer(name: str, stream: str) -> None:
    preset, settings = load(name)
    hand = HANDWRITTEN[name](settings.values)
    assert isinstance(hand, ReadsBeforeWrite)
    ours, theirs = relay_send_path(preset, settings), baseline_send_path(hand)
    merged = 0
    for item in with_answers(_events(stream)):
        outcome = ours(item)
        assert not differences(outcome, theirs(item)), (item[0]["messageId"], differences(outcome, theirs(item)))
        if isinstance(outcome, Send) and item[1] is not None:
            first, write = outcome.requests[0], outcome.requests[-1]
            assert (first.method, first.role) == ("GET", "read")
            unanswered = ours((item[0], None))
            assert isinstance(unanswered, Send)
            merged += write.content != unanswered.requests[-1].content
    assert merged > 100  # most sends merge a stored member's vars into the write


def test_lookup_presets_include_mailgun() -> None:
    assert "mailgun" in lookup_presets()


def test_differences_names_each_field_that_differs() -> None:
    preset, settings = load("mailjet")
    event = next(e for e in _events("repeated contacts") if e["type"] == "identify")
    ours = engine_outcome(relay.render(preset, event, settings, now=NOW))
    assert isinstance(ours, Send)
    (request,) = ours.requests
    reordered = dict(reversed(list(request.headers.items())))
    changed = Send((relay.Request(**{**request.__dict__, "headers": reordered, "content": b"{}"}),))
    assert [d.split(":")[0] for d in differences(ours, changed)] == ["request 1.content", "request 1.headers"]
    assert differences(ours, Send((request, request)))
    assert differences(ours, Drop("no_email"))


def test_the_baseline_really_checks_the_request_schema() -> None:
    _, settings = load("mailgun")
    hand = HANDWRITTEN["mailgun"](settings.values)
    assert isinstance(hand, ReadsBeforeWrite)
    with pytest.raises(fastjsonschema.JsonSchemaException):
        hand.build(MemberPlan("not an address", None, None, {}), None)


def test_distinct_streams_change_only_the_emails() -> None:
    repeated, first, second = list(generate(300)), list(generate(300, distinct="a")), list(generate(300, distinct="b"))

    def without_emails(events: list[dict[str, Any]]) -> str:
        text = json.dumps(events)
        for event in events:
            for email in _emails(event):
                text = text.replace(email, "EMAIL")
        return text

    assert without_emails(repeated) == without_emails(first) == without_emails(second)
    seen = [email.lower() for events in (first, second) for event in events for email in _emails(event)]
    assert len(seen) == len(set(seen)) > 200  # every email new: no verdict cache can help
    many = list(generate(5000))
    assert len({email.lower() for event in many for email in _emails(event)}) < 2000  # contacts repeat


def _emails(event: dict[str, Any]) -> list[str]:
    found = [event.get("traits", {}).get("email"), event.get("context", {}).get("traits", {}).get("email")]
    return [email for email in found if isinstance(email, str) and "@" in email]


def test_stored_members_answer_most_lookups() -> None:
    answers = [stored_member(event, index) for index, event in enumerate(generate(40))]
    assert sum(answer is None for answer in answers) == 10
    assert all(answer["member"]["vars"] for answer in answers if answer)


def test_duel_interleaves_rounds_and_takes_the_median_ratio() -> None:
    order: list[str] = []

    def side(name: str, values: list[float]) -> Any:
        return lambda index: order.append(f"{name}{index}") or values[index]

    result = duel(side("r", [2.0, 4.0, 9.0, 2.0, 2.0]), side("b", [1.0, 1.0, 1.0, 1.0, 2.0]), 5)
    assert order == ["r0", "b0", "b1", "r1", "r2", "b2", "b3", "r3", "r4", "b4"]
    assert result.ratio == 2.0
    assert result.spread == "1.00-9.00x"
    assert Duel([1.0], [2.0]).ratio == 0.5


def test_the_bench_runs_and_writes_its_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.json"
    main(["--quick", "--only", "sendpath", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [r["figure"] for r in rows] == ["send path mailgun", "send path mailgun, distinct contacts"]
    assert all(r["ratio"] > 0 and r["goal"] == "<= 1.5x" for r in rows)
    printed = capsys.readouterr().out
    assert printed.startswith("machine: ") and "| send path mailgun " in printed


def test_the_delivery_clients_deliver_every_request() -> None:
    preset, settings = load("mailjet")
    events = [e for e in generate(60) if relay.render(preset, e, settings, now=NOW).action == "send"][:20]
    requests = [relay.render(preset, e, settings, now=NOW).request for e in events]
    config = {**settings.values, "lists": [settings.values["list_id"]], "properties": preset.constants["properties"]}
    lines = "".join(json.dumps(e) + "\n" for e in events).encode()
    with fake_process(config) as fake:
        runs = [
            relay_run(preset, settings, lines, len(events), fake.url, 2),
            http_client_run([r for r in requests if r is not None], fake.url, 2),
            requests_run([r for r in requests if r is not None], fake.url, 2),
        ]
        cpu = fake.cpu_seconds()
    assert all(run.events == len(events) and run.per_second > 0 and run.cpu_us >= 0 for run in runs)
    assert cpu is None or cpu > 0


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules").is_dir(),
    reason="needs node and bench/node/node_modules (npm ci in bench/node)",
)
@pytest.mark.parametrize("peer", PEERS, ids=lambda peer: peer.label)
def test_each_peer_builds_relays_mailgun_requests(peer: Any, tmp_path: Path) -> None:
    preset, settings = load("mailgun")
    events = [e for e in generate(200) if e["type"] == "identify"]
    files = {
        "events": tmp_path / "events.ndjson",
        "settings": tmp_path / "settings.json",
        "schema": ROOT / "schemas" / "mailgun" / "member.schema.json",
    }
    files["events"].write_text("".join(json.dumps(e) + "\n" for e in events))
    files["settings"].write_text(json.dumps(settings.values))
    result = _run_peer(peer, files, passes=1, warmup=0, out=tmp_path / "out.json")
    assert result["events"] == len(events) and result["us_per_event"] > 0
    expected = [relay.render(preset, e, settings, now=NOW).request for e in events]
    _check(peer, json.loads((tmp_path / "out.json").read_text()), [r for r in expected if r is not None])


def test_the_batching_figure_covers_every_preset_that_batches() -> None:
    from bench.batching import BATCHED

    assert sorted(BATCHED) == sorted(name for name in PRESETS if load(name)[0].batches)


def test_the_generated_presets_of_the_validate_figure_are_valid() -> None:
    """The cold-validate figure times `relay validate` over copies of a bundled preset: each copy
    must be as valid as the original (every request schema it names found), or the figure times
    an error report."""
    from bench.validate import generated_presets

    with generated_presets(2) as folder:
        for preset in sorted(folder.glob("*/preset.yaml")):
            assert relay.load_preset(preset.parent).name == preset.parent.name
