"""HTTPTransport on the wire: framing, keep-alive, limits, timeouts, TLS, and what errors may say.

Each test talks to a scripted server on 127.0.0.1 that answers with exact bytes, so every
framing the transport must read (length, chunked, until close, interim 1xx, gzip) is pinned.
"""

from __future__ import annotations

import base64
import gzip
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from relay import DeliveryError, Request
from relay.delivery import wire
from relay.delivery.transport import HTTPTransport, user_agent
from relay.errors import TransportError

TLS = Path(__file__).parent / "fixtures" / "tls"

#: A server's script: the request's bytes in, the bytes to answer (None: close without answering).
Answerer = Callable[[bytes], bytes | None]


def answer(status: str = "200 OK", body: bytes = b"ok", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


class ScriptedServer:
    """Answers each request on 127.0.0.1 with ``script(request)``; records requests and connections."""

    def __init__(self, script: Answerer, tls: ssl.SSLContext | None = None, close_after: bool = False) -> None:
        self.script = script
        self.close_after = close_after  # close each connection after its first answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = threading.Semaphore(0)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.tls = tls
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http{'s' if self.tls else ''}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._talk, args=(client,), daemon=True).start()

    def _talk(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client = self.tls.wrap_socket(client, server_side=True)
            client.settimeout(5)
            pending = b""
            while not self.stopping.is_set():
                while b"\r\n\r\n" not in pending:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    pending += chunk
                head, _, pending = pending.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(pending) < length:
                    pending += client.recv(65536)
                request, pending = head + b"\r\n\r\n" + pending[:length], pending[length:]
                self.requests.append(request)
                reply = self.script(request)
                if reply is None:
                    return
                client.sendall(reply)
                if self.close_after:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            client.close()
            self.closed.release()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.listener.close()


@contextmanager
def serving(script: Answerer, tls: ssl.SSLContext | None = None, close_after: bool = False) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script, tls, close_after)
    try:
        yield server
    finally:
        server.stop()


def post(url: str, headers: dict[str, str] | None = None, content: bytes = b'{"a":1}') -> Request:
    return Request("POST", url, headers or {"Content-Type": "application/json"}, None, content, "json")


def head_of(request: bytes) -> dict[str, str]:
    lines = request.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


@pytest.mark.parametrize(
    ("raw", "status", "body"),
    [
        (answer(body=b'{"ok":true}'), 200, b'{"ok":true}'),
        (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 202, b"abcde"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + answer("201 Created", b"made"), 201, b"made"),
        (answer("204 No Content", b""), 204, b""),
        (answer(body=gzip.compress(b"squeezed"), headers="Content-Encoding: gzip\r\n"), 200, b"squeezed"),
        (answer("429 Too Many Requests", b"slow", "Retry-After: 3\r\n"), 429, b"slow"),
    ],
    ids=["length", "chunked", "interim-100", "no-content", "gzip", "error-status"],
)
def test_every_framing_is_read_and_the_connection_kept(raw: bytes, status: int, body: bytes) -> None:
    with serving(lambda _request: raw) as server:
        transport = HTTPTransport()
        for _ in range(3):
            got = transport.send(post(f"{server.url}/v1/x"))
            assert (got.status, got.content) == (status, body)
        transport.close()
    assert server.connections == 1


def test_a_body_that_ends_with_the_connection_is_read_and_the_next_request_reconnects() -> None:
    with serving(lambda _request: b"HTTP/1.1 200 OK\r\n\r\nuntil close", close_after=True) as server:
        transport = HTTPTransport()
        for _ in range(2):
            got = transport.send(post(f"{server.url}/x"))
            assert (got.status, got.content) == (200, b"until close")
    assert server.connections == 2


def test_repeated_headers_are_joined_and_the_server_case_kept() -> None:
    raw = answer(headers="X-Thing: a\r\nX-Thing: b\r\nContent-Type: application/json\r\n")
    with serving(lambda _request: raw) as server:
        got = HTTPTransport().send(post(f"{server.url}/x"))
    assert got.headers["X-Thing"] == "a, b"
    assert got.content_type == "application/json"


def test_the_request_names_its_host_length_and_relay_and_the_presets_headers_win() -> None:
    with serving(lambda _request: answer()) as server:
        transport = HTTPTransport()
        transport.send(post(f"{server.url}/v1/x?y=1#fragment"))
        transport.send(post(f"{server.url}/v1/x", {"Host": "api.example.test", "User-Agent": "mine/1"}))
    first, second = server.requests
    assert first.startswith(b"POST /v1/x?y=1 HTTP/1.1\r\n")
    assert head_of(first)["host"] == server.url.split("//")[1]
    assert head_of(first)["content-length"] == "7"
    assert head_of(first)["user-agent"] == user_agent()
    assert (head_of(second)["host"], head_of(second)["user-agent"]) == ("api.example.test", "mine/1")
    assert second.count(b"Host:") == 1


def test_url_credentials_become_basic_auth_and_never_reach_an_error() -> None:
    with serving(lambda _request: answer()) as server:
        url = server.url.replace("://", "://ada:s3cr%40t@") + "/x"
        HTTPTransport().send(post(url))
    assert head_of(server.requests[0])["authorization"] == "Basic " + base64.b64encode(b"ada:s3cr@t").decode()
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(TransportError) as refused:
        HTTPTransport(connect_timeout=2).send(post(f"http://ada:s3cr3t@127.0.0.1:{port}/x?api_key=k3y"))
    assert refused.value.kind == "connection_error"
    assert not {"s3cr3t", "k3y", "ada", str(port)} & set(str(refused.value).replace("(", " ").split())


@pytest.mark.parametrize(
    "headers",
    [{"X-Bad": "one\r\nInjected: yes"}, {"Bad Name": "x"}, {"X-Nul": "a\0b"}, {"X-Wide": "snow ☃"}],
)
def test_a_header_that_cannot_be_sent_is_refused_before_anything_is_sent(headers: dict[str, str]) -> None:
    with serving(lambda _request: answer()) as server, pytest.raises(DeliveryError, match="cannot be sent"):
        HTTPTransport().send(post(f"{server.url}/x", headers))
    assert server.requests == []


@pytest.mark.parametrize(
    "raw",
    [
        answer(body=b"x" * 1001),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"100\r\n" + b"y" * 256 + b"\r\n") * 4
        + b"0\r\n\r\n",
        answer(body=gzip.compress(b"z" * 5000), headers="Content-Encoding: gzip\r\n"),
    ],
    ids=["length", "chunked", "gzip"],
)
def test_an_answer_past_the_size_cap_fails_naming_the_limit(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_ANSWER_BYTES", 1000)
    with serving(lambda _request: raw) as server, pytest.raises(TransportError, match="MAX_ANSWER_BYTES") as failure:
        HTTPTransport().send(post(f"{server.url}/x"))
    assert failure.value.kind == "connection_error"


def test_a_head_without_an_end_fails_naming_its_limit() -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"f" * 70_000 + b"\r\n"
    with serving(lambda _request: endless) as server, pytest.raises(TransportError, match="MAX_HEAD_BYTES"):
        HTTPTransport(read_timeout=5).send(post(f"{server.url}/x"))


def test_a_slow_answer_times_out_and_a_broken_one_is_a_connection_error() -> None:
    release = threading.Event()

    def slow(_request: bytes) -> bytes:
        release.wait(5)
        return answer()

    with serving(slow) as server:
        with pytest.raises(TransportError) as late:
            HTTPTransport(read_timeout=0.2).send(post(f"{server.url}/x"))
        release.set()
    assert late.value.kind == "timeout"
    for raw in (None, b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"):
        with serving(lambda _request, raw=raw: raw) as server:  # type: ignore[misc]
            transport = HTTPTransport(read_timeout=0.5)
            with pytest.raises(TransportError) as broken:
                transport.send(post(f"{server.url}/x"))
                server.stop()  # the truncated answer: its server goes away without the rest
        assert broken.value.kind in ("connection_error", "timeout")


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    with serving(lambda _request: answer(), close_after=True) as server:
        transport = HTTPTransport()
        assert transport.send(post(f"{server.url}/x")).status == 200
        assert server.closed.acquire(timeout=5)  # the server closed the connection the pool keeps
        assert transport.send(post(f"{server.url}/x")).status == 200
    assert server.connections == 2


def test_threads_share_the_pool_without_losing_an_answer() -> None:
    with serving(lambda request: answer(body=request.rpartition(b"\r\n\r\n")[2])) as server:
        transport = HTTPTransport(pool_size=4)
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                for round_ in range(40):
                    body = f'{{"t":{index},"n":{round_}}}'.encode()
                    assert transport.send(post(f"{server.url}/x", content=body)).content == body
            except BaseException as exc:  # reported below, from the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        transport.close()
    assert errors == []
    assert len(server.requests) == 320
    assert server.connections <= 8


def test_tls_is_verified_and_an_unknown_certificate_refused() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "selfsigned.pem", TLS / "selfsigned.key")
    with serving(lambda _request: answer(), tls=context) as server, pytest.raises(TransportError) as refused:
        HTTPTransport(connect_timeout=2).send(post(f"{server.url}/x"))
    assert refused.value.kind == "connection_error"
    assert "SSLCertVerificationError" in str(refused.value)
    assert "127.0.0.1" not in str(refused.value)


@pytest.mark.parametrize("url", ["ftp://example.test/x", "http:///x", "http://127.0.0.1:port/x"])
def test_a_url_that_names_no_http_server_is_refused(url: str) -> None:
    with pytest.raises(DeliveryError, match="cannot be sent"):
        HTTPTransport().send(post(url))
