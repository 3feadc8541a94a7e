"""HTTP/1.1 on the wire, for ``HTTPTransport``: a request's bytes out, one answer's parts in.

The answer is parsed by llhttp (Node's HTTP parser, in C, through ``httptools``, which the
collector already uses): status, headers, ``Content-Length``/chunked/close-delimited bodies,
interim ``1xx`` answers and keep-alive rules are its work, not hand-written. What is relay's:
the limits (``MAX_HEAD_BYTES``, ``MAX_ANSWER_BYTES``, each named when it is hit) and gzip/deflate
decoding, as ``requests`` did it.
"""

from __future__ import annotations

import re
import socket
import zlib
from collections.abc import Mapping

import httptools

from ..errors import DeliveryError, RelayError

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_HEAD_BYTES",
    "Answer",
    "AnswerTooLarge",
    "decoded",
    "encode_request",
    "read_answer",
    "split_url",
    "unsendable",
]

#: The largest answer body relay reads (after gzip decoding): past it the answer counts as broken.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: The largest answer head (status line and headers) relay reads.
MAX_HEAD_BYTES = 64 * 1024

# A header name is an RFC 9110 token; a value may hold no line break and no NUL.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\0]")
# What a request target may hold as it is; anything else is percent-encoded, as requests did.
_PLAIN_TARGET = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,/:;=?@%\[\]]*")
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"


class AnswerTooLarge(RelayError):
    """An answer past a named limit: relay stops reading it and counts it as a broken answer."""

    def __init__(self, limit: str, size: int) -> None:
        self.limit = limit
        super().__init__(f"the answer is larger than {limit} ({size} bytes)")


def unsendable(why: str) -> DeliveryError:
    """A request no server could be sent (a permanent failure: retrying cannot help)."""
    return DeliveryError(
        f"the request cannot be sent: {why}",
        hint="the preset renders this part of the request; check its template and the event's values",
    )


def split_url(url: str) -> tuple[str, str]:
    """``https://host:port`` and ``/path?query`` of an absolute URL, without its fragment."""
    start = url.find("://")
    slash = url.find("/", start + 3 if start >= 0 else 0)
    origin, target = (url, "/") if slash < 0 else (url[:slash], url[slash:])
    query = origin.find("?")
    if query >= 0:  # https://host?x=1
        origin, target = origin[:query], "/" + origin[query:]
    return origin, target.partition("#")[0]


def encode_request(
    method: str,
    target: str,
    headers: Mapping[str, str],
    content: bytes,
    implied: tuple[tuple[str, str], ...],
) -> bytes:
    """The whole request, head and body, as the bytes to write (one write: one packet for
    a small event). ``implied`` are ``(lowercased name, "Name: value\\r\\n")`` lines sent
    unless the request has a header of that name (Host, Authorization from the URL, defaults)."""
    if _PLAIN_TARGET.fullmatch(target) is None:
        target = quote_target(target)
    if _TOKEN.fullmatch(method) is None:
        raise unsendable(f"the method {method!r} is not an HTTP method")
    head = [f"{method} {target} HTTP/1.1\r\n"]
    given = set()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "content-length":  # always the length of what is sent, as requests did
            continue
        if _TOKEN.fullmatch(name) is None or lowered == "transfer-encoding":
            raise unsendable(f"the header name {name!r} cannot be sent")
        if _BAD_VALUE.search(value) is not None:
            raise unsendable(f"the header {name} holds a line break or a NUL")
        given.add(lowered)
        head.append(f"{name}: {value}\r\n")
    for lowered, line in implied:
        if lowered not in given:
            head.append(line)
    if content or method not in ("GET", "HEAD"):
        head.append(f"Content-Length: {len(content)}\r\n")
    head.append("\r\n")
    try:
        return "".join(head).encode("latin-1") + content
    except UnicodeEncodeError:
        raise unsendable("a header holds a character outside Latin-1") from None


def quote_target(target: str) -> str:
    from urllib.parse import quote

    return quote(target, safe=_TARGET_SAFE)


class Answer:
    """One answer as llhttp reports it (its callbacks), until the final (non-1xx) one ends."""

    __slots__ = ("body", "done", "head_only", "headers", "headers_done", "keep_alive", "parser", "size", "status")

    def __init__(self, head_only: bool) -> None:
        self.head_only = head_only  # an answer to HEAD: its length headers announce no body
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.body: list[bytes] = []
        self.size = 0
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text  # repeated: joined, as urllib3 does

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None
        self.status = parser.get_status_code()
        if 100 <= self.status < 200:  # an interim answer: the final one follows on the same bytes
            self.headers = {}
            return
        self.headers_done = True
        if self.head_only:
            self.done = True
            self.keep_alive = parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_ANSWER_BYTES:
            raise AnswerTooLarge("MAX_ANSWER_BYTES", MAX_ANSWER_BYTES)
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.headers_done and not self.done and self.parser is not None:
            self.done = True
            self.keep_alive = self.parser.should_keep_alive()  # only known before the parser resets

    def ended(self) -> bool:
        return self.done

    def until_close(self) -> bool:
        """The body has no length: it ends where the server closes the connection."""
        lowered = {name.lower(): value.lower() for name, value in self.headers.items()}
        return "content-length" not in lowered and "chunked" not in lowered.get("transfer-encoding", "")


def read_answer(sock: socket.socket, head_only: bool) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers, body and whether the connection may be reused, for one request sent
    on ``sock``. Raises OSError (TimeoutError after the socket's timeout), AnswerTooLarge, or
    ``httptools.HttpParserError`` for bytes that are not an HTTP/1.x answer."""
    answer = Answer(head_only)
    assert answer.parser is not None
    feed = answer.parser.feed_data
    head = 0
    try:
        while not answer.done:
            chunk = sock.recv(65536)
            if not chunk:
                if answer.headers_done and answer.until_close():
                    answer.keep_alive = False
                    break
                raise ConnectionError("the server closed the connection before its answer ended")
            if not answer.headers_done:
                head += len(chunk)
            try:
                feed(chunk)
            except httptools.HttpParserCallbackError as error:
                if isinstance(error.__context__, AnswerTooLarge):
                    raise error.__context__ from None
                raise
            except httptools.HttpParserError:
                if not answer.ended():
                    raise
                answer.keep_alive = False  # bytes past the answer: this connection is not trusted again
            if not answer.headers_done and head > MAX_HEAD_BYTES:
                raise AnswerTooLarge("MAX_HEAD_BYTES", MAX_HEAD_BYTES)
    finally:
        answer.parser = None  # no reference cycle left for the garbage collector
    return answer.status, answer.headers, b"".join(answer.body), answer.keep_alive


def decoded(content: bytes, encoding: str) -> bytes:
    """``content`` decoded from its Content-Encoding (gzip, deflate, or several); others as sent."""
    for coding in reversed([part.strip().lower() for part in encoding.split(",")]):
        if coding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":  # zlib-wrapped as the RFC says, or raw as some servers send it
            decoder = zlib.decompressobj(zlib.MAX_WBITS if content[:1] == b"\x78" else -zlib.MAX_WBITS)
        elif coding == "identity":
            continue
        else:
            return content
        content = decoder.decompress(content, MAX_ANSWER_BYTES + 1)
        if len(content) > MAX_ANSWER_BYTES or decoder.unconsumed_tail:
            raise AnswerTooLarge("MAX_ANSWER_BYTES", MAX_ANSWER_BYTES)
    return content
