"""A generic recording fake: it stands in for any preset's vendor, from the preset itself.

Routes come from the preset's requests and preflight checks. A request is answered
only if it carries the credential the preset sends with the settings it was given,
and its body (JSON or form) passes the route's request schema; otherwise the answer
is the vendor's own 401 or 400, so the preset's response rules see what the real API
would say. Every accepted request is recorded for the test (or the author) to inspect.

How a vendor answers (status codes and bodies) comes from a profile: ``fake.yaml``
beside the preset, when there is one (see ``Profile``). Without one, a valid request
gets ``200 {}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .server import FakeRequest, FakeResponse, FakeVendor

__all__ = ["Answer", "Profile", "RecordingFake", "Route", "origin_pattern", "path_pattern"]

PROFILE_FILE = "fake.yaml"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None

    def response(self, **values: str) -> FakeResponse:
        """The answer, with ``{problems}``, ``{path}`` and ``{method}`` filled in its text."""
        if self.body is None or self.status == 204:
            return FakeResponse(self.status)
        return FakeResponse.json(self.status, _fill(self.body, values))


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, text in values.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


@dataclass(frozen=True)
class Profile:
    """How a vendor answers, read from a preset's ``fake.yaml``::

    answers: {member: {status: 200, body: {...}}, event: {status: 204}}   # by request or check name
    unauthorized: {status: 401, body: {...}}    # a request without the right credential
    invalid: {status: 400, body: {detail: "{problems}"}}   # a body that fails its schema
    not_found: {status: 404, body: {...}}       # no route
    credential: {field: access_token, setting: access_token}   # a credential in the body
    """

    answers: dict[str, Answer] = field(default_factory=dict)
    unauthorized: Answer = Answer(401, {"errors": [{"message": "authorization required"}]})
    invalid: Answer = Answer(400, {"errors": [{"message": "{problems}"}]})
    not_found: Answer = Answer(404, {"errors": [{"message": "no route for {method} {path}"}]})
    #: A credential the preset sends in a body field rather than a header: (field, setting).
    credential_field: tuple[str, str] | None = None

    @classmethod
    def load(cls, path: Path) -> Profile:
        from relay.preset.source import load_yaml

        data = load_yaml(path).data or {}

        def answer(raw: Any, default: Answer) -> Answer:
            return Answer(int(raw.get("status", 200)), raw.get("body")) if isinstance(raw, dict) else default

        credential = data.get("credential")
        return cls(
            answers={name: answer(raw, Answer()) for name, raw in (data.get("answers") or {}).items()},
            unauthorized=answer(data.get("unauthorized"), cls.unauthorized),
            invalid=answer(data.get("invalid"), cls.invalid),
            not_found=answer(data.get("not_found"), cls.not_found),
            credential_field=(credential["field"], credential["setting"]) if isinstance(credential, dict) else None,
        )

    @classmethod
    def beside(cls, preset: Any) -> Profile:
        path = Path(preset.path).parent / PROFILE_FILE
        return cls.load(path) if path.is_file() else cls()


@dataclass
class Route:
    name: str
    path: re.Pattern[str]
    status: int = 200
    body: Any = None
    validator: Any = None  # an engine BodyValidator
    method: str | None = None
    #: Header (lower-cased) or query parameter values the request must carry.
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


def _split_url(url_template: str) -> tuple[str, str]:
    """(origin, rest) of a URL template; a template in the host stays in the origin."""
    found = re.match(r"https?://(?:\{\{.*?\}\}|[^/{])*", url_template)
    return (found.group(0), url_template[found.end() :]) if found else ("", url_template)


def origin_pattern(url_template: str) -> str:
    """The ``--redirect`` FROM that takes every URL a template can render to: the literal
    origin, each ``{{ }}`` in it as ``*`` (``https://*.api.example.com``); ``*`` (any origin)
    when the template starts with a template (``{{ settings.base_url }}/v3``)."""
    origin, _rest = _split_url(url_template)
    return re.sub(r"\{\{.*?\}\}", "*", origin) if origin else "*"


def path_pattern(url_template: str) -> re.Pattern[str]:
    """The request paths (as sent, percent-encoded) a URL template can render to.

    The origin is dropped, templated or not (``https://{{ dc }}.api.example.com/3.0/x``
    gives ``/3.0/x``); a template standing where the origin is (``{{ settings.base_url }}/v3``
    or ``{{ settings.url }}``) may hold any prefix; the query string is not part of the path.
    """
    origin, text = _split_url(url_template)
    text = text.split("?", 1)[0]  # Jinja expressions have no `?`: this is the query string
    parts = re.split(r"(\{\{.*?\}\})", text)
    regex = ""
    for index, part in enumerate(parts):
        if part.startswith("{{"):
            regex += ".*" if index == 1 and parts[0] == "" and not origin else "[^/?]*"
        else:
            regex += re.escape(part)
    return re.compile(regex or "/?")


class RecordingFake(FakeVendor):
    name = "recording"

    def __init__(
        self,
        routes: list[Route],
        credential: tuple[str, str] | None = None,
        profile: Profile | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.routes = routes
        self.credential_header = credential
        self.profile = profile or Profile()
        self.settings = settings
        self.received: list[dict[str, Any]] = []
        #: Answers set for one exact method and path (what a ``read`` finds), by ``seed``.
        self.seeded: dict[tuple[str, str], Answer] = {}

    @classmethod
    def for_preset(
        cls,
        preset: Any,
        answers: dict[str, tuple[int, Any]] | None = None,
        credential: tuple[str, str] | None = None,
        extra: list[Route] | None = None,
        *,
        profile: Profile | None = None,
        settings: Any = None,
    ) -> RecordingFake:
        """A route per request and preflight check of ``preset``.

        ``answers`` maps a request name to (status, body), over the profile's (``fake.yaml``
        beside the preset, by default). With ``settings`` (resolved), a request must carry
        exactly the credential the preset sends with them.
        """
        profile = profile or Profile.beside(preset)
        given = {**profile.answers, **{k: Answer(*v) for k, v in (answers or {}).items()}}
        routes = list(extra or [])
        steps = [*preset.steps, *(c.request for c in preset.checks), *(c.fix for c in preset.checks if c.fix)]
        for step in steps:
            answer = given.get(step.name, Answer(200, {}))
            method = step.method_source if "{{" not in step.method_source else None
            headers, query = _credentials(preset, step, settings) if settings is not None else ({}, {})
            routes.append(
                Route(
                    step.name,
                    path_pattern(step.url_source),
                    answer.status,
                    answer.body,
                    step.validator,
                    method,
                    headers,
                    query,
                )
            )
        # The most specific path first: `{{ x }}/events` before `{{ x }}`, which matches anything.
        routes.sort(key=lambda route: -len(re.sub(r"\.\*|\[\^/\?\]\*", "", route.path.pattern)))
        values = getattr(settings, "values", None)
        return cls(routes, credential, profile, values)

    def seed(self, method: str, path: str, answer: Any, status: int = 200) -> None:
        """Make ``method path`` (as sent) answer ``answer``: what a ``read`` request finds."""
        with self.lock:
            self.seeded[(method.upper(), path)] = Answer(status, answer)

    def handle(self, request: FakeRequest) -> FakeResponse:
        where = {"method": request.method, "path": request.path}
        if self.credential_header is not None:
            header, expected = self.credential_header
            if request.headers.get(header.lower()) != expected:
                return self.profile.unauthorized.response(**where, problems="authorization required")
        candidates = [
            r
            for r in self.routes
            if r.path.fullmatch(request.raw_path) and (r.method is None or r.method == request.method)
        ]
        if not candidates:
            return self.profile.not_found.response(**where, problems="no route")
        body, complaint = _decoded(request)
        if complaint:
            return self.profile.invalid.response(**where, problems=complaint)
        if not self._authorized(candidates[0], request, body):
            return self.profile.unauthorized.response(**where, problems="authorization required")
        # Several requests of a preset may share a URL (one per payload shape): the route is
        # the first whose schema the body passes; if none passes, the first one's complaints.
        route, problems = candidates[0], list[str]()
        for candidate in candidates:
            found = _problems(candidate, body)
            if not found:
                route, problems = candidate, []
                break
            if candidate is candidates[0]:
                problems = found
        if problems:
            return self.profile.invalid.response(**where, problems="; ".join(problems))
        self.received.append(
            {
                "route": route.name,
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers,
                "body": body,
                "raw": request.body,
            }
        )
        seeded = self.seeded.get((request.method, request.raw_path))
        if seeded is not None:
            return seeded.response(**where)
        return Answer(route.status, route.body).response(**where)

    def _authorized(self, route: Route, request: FakeRequest, body: Any) -> bool:
        if any(request.headers.get(name) != value for name, value in route.headers.items()):
            return False
        if any(request.query.get(name) != value for name, value in route.query.items()):
            return False
        if self.profile.credential_field and self.settings is not None:
            name, setting = self.profile.credential_field
            return isinstance(body, dict) and body.get(name) == self.settings.get(setting)
        return True

    def snapshot(self) -> dict[str, Any]:
        return {"requests": [{k: v for k, v in r.items() if k != "raw"} for r in self.received]}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [[r["route"], r["method"], r["path"], r["body"]] for r in self.received]
        return "Recorded requests", ["route", "method", "path", "body"], rows


def _decoded(request: FakeRequest) -> tuple[Any, str]:
    """(body, complaint): JSON or form, as the Content-Type says; no body is None."""
    if not request.body:
        return None, ""
    if request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/")):
        return request.form(), ""
    try:
        return request.json(), ""
    except ValueError:
        return None, "the body is not JSON"


def _problems(route: Route, body: Any) -> list[str]:
    if route.validator is None:
        return []
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in route.validator.errors(body)
    )


def _credentials(preset: Any, step: Any, settings: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The credential headers and query parameters ``step`` carries with ``settings``."""
    from relay.runtime.build import credentials

    context = {"settings": settings.values, "constants": preset.constants}
    found, parameters = credentials(preset, step, context)
    headers = {name.lower(): value for name, value in found.items()}
    query = dict(parameters)
    return headers, query
