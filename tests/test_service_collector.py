"""The collector in process: Segment's API, its limits, hostile bodies, de-duplication, JSON errors.

The app runs in Starlette's TestClient against a real embedded queue (delivery not
started), so what was accepted is read back from SQLite. Hostile transports (a slow
client, a gzip bomb on the wire) are in test_service_e2e.py, against `relay serve`.
"""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from relay.service.app import Service
from relay.service.config import load_config
from tests.delivery_helpers import MAILGUN_SETTINGS
from tests.service_helpers import OTHER_KEY, WRITE_KEY, write_config

DESTINATIONS = [
    {"name": "newsletter", "preset": "mailgun", "settings": MAILGUN_SETTINGS, "redirect": {"https://api.mailgun.net": "http://127.0.0.1:9"}}
]  # fmt: skip


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    path = write_config(tmp_path, DESTINATIONS, server={"limits": {"event_bytes": 2048, "batch_bytes": 8192}})
    svc = Service(load_config(path, environ={"TEST_WRITE_KEY": WRITE_KEY}))
    yield svc
    svc.stop()


@pytest.fixture()
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(service.app, raise_server_exceptions=False) as test_client:
        yield test_client


def stored(service: Service) -> list[dict[str, Any]]:
    assert service.queue is not None
    db = sqlite3.connect(service.queue.path)
    try:
        return [json.loads(raw) for (raw,) in db.execute("SELECT raw FROM events ORDER BY seq")]
    finally:
        db.close()


def auth(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def identify(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"u{n}",
        "messageId": f"m-{n}",
        "traits": {"email": f"p{n}@example.com"},
        **extra,
    }


def test_batch_is_stored_with_received_at_and_message_ids(client: TestClient, service: Service) -> None:
    body = {
        "batch": [identify(1), {"type": "track", "event": "Signed Up", "userId": "u2"}],
        "context": {"ip": "1.2.3.4"},
    }
    answer = client.post("/v1/batch", json=body, headers=auth())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "accepted": 2, "duplicates": 0}
    first, second = stored(service)
    assert first["messageId"] == "m-1" and second["messageId"].startswith("relay-")
    assert first["receivedAt"].endswith("Z") and first["context"] == {"ip": "1.2.3.4"}  # the batch's context


@pytest.mark.parametrize("kind", ["track", "identify", "page", "screen", "group", "alias"])
def test_each_single_endpoint_sets_the_type_and_drops_the_write_key(
    client: TestClient, service: Service, kind: str
) -> None:
    answer = client.post(f"/v1/{kind}", json={"userId": "u1", "writeKey": OTHER_KEY})
    assert answer.status_code == 200, answer.text
    [event] = stored(service)
    assert event["type"] == kind and "writeKey" not in event


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"batch": [identify(1)]}, 401, "unauthorized"),  # no key at all
        (auth("wk-not-a-key-000"), {"batch": [identify(1)]}, 401, "unauthorized"),
        ({"Authorization": "Bearer abc"}, {"batch": [identify(1)]}, 401, "unauthorized"),
        ({}, {"batch": [identify(1)], "writeKey": "wk-unknown-000"}, 401, "unauthorized"),
        (auth(), {"batch": [{"userId": "u1"}]}, 400, "missing_type"),
        (auth(), {"batch": [{"type": "purchase"}]}, 400, "bad_event"),
        (auth(), {"batch": ["not an object"]}, 400, "bad_event"),
        (auth(), {"batch": {"type": "track"}}, 400, "bad_request"),
        (auth(), [1, 2], 400, "bad_json"),
        (auth(), {"batch": [{"type": "track", "batch": [identify(2)]}]}, 400, "bad_event"),
    ],
)
def test_refusals_are_json_and_store_nothing(
    client: TestClient, service: Service, headers: dict[str, str], body: Any, status: int, code: str
) -> None:
    answer = client.post("/v1/batch", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code and answer.json()["success"] is False
    assert stored(service) == []


def test_a_batch_with_one_bad_event_is_refused_whole_naming_it(client: TestClient, service: Service) -> None:
    answer = client.post("/v1/batch", json={"batch": [identify(1), {"userId": "u2"}]}, headers=auth())
    assert answer.status_code == 400 and "batch[1]" in answer.json()["message"]
    assert stored(service) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{bad", "not valid JSON"),
        (b"", "empty"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"batch": [' * 200 + b"]}" * 200, "deeper"),
        (b'{"batch": [{"type": "track", "userId": "\\ud800"}]}', "Unicode"),
    ],
)
def test_bad_bodies_get_a_clear_400(client: TestClient, service: Service, raw: bytes, message: str) -> None:
    answer = client.post("/v1/batch", content=raw, headers=auth())
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]
    assert stored(service) == []


def test_segment_limits_are_400s_naming_the_limit(client: TestClient, service: Service) -> None:
    big_event = identify(1, traits={"bio": "x" * 3000})
    answer = client.post("/v1/batch", json={"batch": [big_event]}, headers=auth())
    assert answer.status_code == 400 and answer.json()["limit"] == "event_bytes"
    answer = client.post("/v1/identify", json=big_event, headers=auth())
    assert answer.status_code == 400 and answer.json()["limit"] == "event_bytes"
    many = {"batch": [identify(n, traits={"bio": "y" * 500}) for n in range(20)]}  # each fits; together over 8 KB
    answer = client.post("/v1/batch", json=many, headers=auth())
    assert answer.status_code == 400 and answer.json()["limit"] == "batch_bytes"
    assert stored(service) == []


def test_gzip_bodies_are_accepted_and_bombs_fail_on_the_limit(client: TestClient, service: Service) -> None:
    body = json.dumps({"batch": [identify(1)]}).encode()
    answer = client.post("/v1/batch", content=gzip.compress(body), headers={**auth(), "Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    bomb = gzip.compress(b'{"batch": [' + b" " * 50_000_000 + b"]}")  # 50 MB of spaces in ~50 KB
    assert len(bomb) < 8192 * 10
    answer = client.post("/v1/batch", content=bomb[:8000], headers={**auth(), "Content-Encoding": "gzip"})
    assert answer.status_code == 400 and answer.json()["limit"] == "batch_bytes"
    answer = client.post("/v1/batch", content=b"not gzip", headers={**auth(), "Content-Encoding": "gzip"})
    assert answer.status_code == 400 and answer.json()["code"] == "bad_gzip"
    answer = client.post("/v1/batch", content=body, headers={**auth(), "Content-Encoding": "br"})
    assert answer.status_code == 415
    assert len(stored(service)) == 1


def test_the_same_message_id_is_stored_once_within_the_window(client: TestClient, service: Service) -> None:
    body = {"batch": [identify(1), identify(1), identify(2)]}
    assert client.post("/v1/batch", json=body, headers=auth()).json() == {
        "success": True,
        "accepted": 2,
        "duplicates": 1,
    }
    assert client.post("/v1/batch", json=body, headers=auth()).json()["duplicates"] == 3
    # Another source may use the same ids: de-duplication is per source.
    assert client.post("/v1/batch", json=body, headers=auth(OTHER_KEY)).json()["accepted"] == 2
    assert [e["messageId"] for e in stored(service)] == ["m-1", "m-2", "m-1", "m-2"]


def test_every_other_answer_is_json(client: TestClient) -> None:
    for method, path, status in [("GET", "/nowhere", 404), ("GET", "/v1/batch", 405), ("PUT", "/health", 405)]:
        answer = client.request(method, path)
        assert answer.status_code == status and answer.json()["success"] is False
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_metrics_count_answers_and_never_show_a_secret(client: TestClient) -> None:
    client.post("/v1/batch", json={"batch": [identify(1)]}, headers=auth())
    client.post("/v1/batch", json={"batch": [identify(2)]}, headers=auth("wk-wrong-key-000"))
    client.get(f"/{WRITE_KEY}")  # a hostile path never becomes a label
    text = client.get("/metrics").text
    assert 'relay_events_received_total{source="web"} 1.0' in text
    assert 'relay_http_requests_total{route="/v1/batch",status="401"} 1.0' in text
    assert 'relay_http_requests_total{route="other",status="404"} 1.0' in text
    for secret in (WRITE_KEY, OTHER_KEY, MAILGUN_SETTINGS["api_key"], "wk-wrong-key-000"):
        assert secret not in text


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "purchase", ""]),
        "userId": st.text(max_size=10),
        "messageId": st.text(max_size=10),
        "traits": _json_values,
    },
)
_bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v).encode(), _json_values),
    st.builds(lambda b: json.dumps({"batch": b}).encode(), st.lists(_events | _json_values, max_size=5)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/alias", "/v1/nope", "/metrics"]),
    body=_bodies,
    gzipped=st.booleans(),
    key=st.sampled_from([WRITE_KEY, "", "wk-unknown-000", None]),
)
def test_fuzz_every_answer_is_json_and_accepted_means_stored(
    client: TestClient, service: Service, path: str, body: bytes, gzipped: bool, key: str | None
) -> None:
    headers = auth(key) if key is not None else {}
    if gzipped:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
    before = len(stored(service))
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code in (200, 400, 401, 404, 405, 415), (answer.status_code, answer.text)
    payload = answer.json()
    added = len(stored(service)) - before
    if answer.status_code == 200:
        assert payload["success"] is True and added == payload["accepted"]
    else:
        assert payload["success"] is False and payload["code"] and added == 0


@pytest.mark.parametrize("origin", [None, "https://shop.example.com"])
def test_browsers_get_cors_and_every_caller_the_same_answer(
    client: TestClient, service: Service, origin: str | None
) -> None:
    headers = {**auth(), **({"Origin": origin} if origin else {})}
    answer = client.post("/v1/batch", json={"batch": [identify(1)]}, headers=headers)
    assert answer.json() == {"success": True, "accepted": 1, "duplicates": 0}
    assert answer.headers.get("access-control-allow-origin") == ("*" if origin else None)
    refused = client.post("/v1/track", json={"userId": "u"}, headers={**headers, "Authorization": "Basic x"})
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    text = client.get("/metrics").text
    assert 'relay_http_requests_total{route="/v1/batch",status="200"} 1.0' in text
    assert 'relay_http_requests_total{route="/v1/track",status="401"} 1.0' in text
    preflight = client.options("/v1/batch", headers={"Origin": "https://shop.example.com",
                                                     "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]


@pytest.mark.parametrize("origin", [None, "https://shop.example.com"])
def test_an_internal_error_is_a_json_500_and_the_collector_keeps_serving(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch, origin: str | None
) -> None:
    assert service.collector is not None

    async def broken(*_args: Any) -> Any:
        raise RuntimeError("a bug")

    headers = {**auth(), **({"Origin": origin} if origin else {})}
    monkeypatch.setattr(service.collector, "handle", broken)
    answer = client.post("/v1/batch", json={"batch": [identify(1)]}, headers=headers)
    assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
    monkeypatch.undo()
    assert client.post("/v1/batch", json={"batch": [identify(1)]}, headers=headers).status_code == 200
    assert len(stored(service)) == 1
