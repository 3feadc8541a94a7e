"""A generic recording fake: checks each request against a preset's request schemas.

Routes come from the preset itself (the request and its variants): a request to
a route's path is answered with the route's status only if its credential is
right and its JSON body passes the route's schema; otherwise 401 or 400 with
the schema's complaints. Every request is recorded for the test to inspect.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .server import FakeRequest, FakeResponse, FakeVendor

__all__ = ["RecordingFake", "Route", "path_pattern"]


@dataclass
class Route:
    name: str
    path: re.Pattern[str]
    status: int = 200
    body: Any = None
    validator: Any = None  # an engine BodyValidator
    method: str | None = None


def path_pattern(url_template: str) -> re.Pattern[str]:
    """The request paths a URL template can render to.

    A literal scheme and host are dropped; a template standing where the host is
    (``{{ settings.base_url }}/v3/...`` or ``{{ settings.url }}``) may hold any prefix.
    """
    text = re.sub(r"^https?://[^/{]+", "", url_template)
    parts = re.split(r"(\{\{.*?\}\})", text)
    regex = ""
    for index, part in enumerate(parts):
        if part.startswith("{{"):
            regex += ".*" if index == 1 and parts[0] == "" else "[^/]*"
        else:
            regex += re.escape(part)
    return re.compile(regex or "/")


class RecordingFake(FakeVendor):
    name = "recording"

    def __init__(self, routes: list[Route], credential: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.routes = routes
        self.credential_header = credential
        self.received: list[dict[str, Any]] = []

    @classmethod
    def for_preset(
        cls,
        preset: Any,
        answers: dict[str, tuple[int, Any]] | None = None,
        credential: tuple[str, str] | None = None,
        extra: list[Route] | None = None,
    ) -> RecordingFake:
        """A route for each of the preset's requests; ``answers`` maps a request name to (status, body)."""
        answers = answers or {}
        routes = list(extra or [])
        for step in preset.steps:
            status, body = answers.get(step.name, (200, {}))
            method = step.method_source if "{{" not in step.method_source else None
            routes.append(Route(step.name, path_pattern(step.url_source), status, body, step.validator, method))
        # The most specific path first: `{{ x }}/events` before `{{ x }}`, which matches anything.
        routes.sort(key=lambda route: -len(re.sub(r"\.\*|\[\^/\]\*", "", route.path.pattern)))
        return cls(routes, credential)

    def handle(self, request: FakeRequest) -> FakeResponse:
        if self.credential_header is not None:
            header, expected = self.credential_header
            if request.headers.get(header.lower()) != expected:
                return FakeResponse.json(401, {"errors": [{"message": "authorization required"}]})
        candidates = [
            r
            for r in self.routes
            if r.path.fullmatch(request.path) and (r.method is None or r.method == request.method)
        ]
        if not candidates:
            return FakeResponse.json(404, {"errors": [{"message": f"no route for {request.path}"}]})
        body: Any = None
        if request.body:
            try:
                body = request.json()
            except ValueError:
                return FakeResponse.json(400, {"errors": [{"message": "body is not JSON"}]})
        # Several requests of a preset may share a URL (one per payload shape): the route is
        # the first whose schema the body passes; if none passes, the first one's complaints.
        route, problems = candidates[0], list[str]()
        for candidate in candidates:
            found = (
                sorted(e.message for e in candidate.validator.plain.iter_errors(body)) if candidate.validator else []
            )
            if not found:
                route, problems = candidate, []
                break
            if candidate is candidates[0]:
                problems = found
        if problems:
            return FakeResponse.json(400, {"errors": [{"message": p} for p in problems]})
        self.received.append(
            {
                "route": route.name,
                "method": request.method,
                "path": request.path,
                "headers": request.headers,
                "body": body,
                "raw": request.body,
            }
        )
        if route.status == 204 or route.body is None:
            return FakeResponse(route.status)
        return FakeResponse(route.status, json.dumps(route.body).encode(), {"Content-Type": "application/json"})

    def snapshot(self) -> dict[str, Any]:
        return {"requests": [{k: v for k, v in r.items() if k != "raw"} for r in self.received]}

    def table(self) -> tuple[str, list[str], list[list[Any]]]:
        rows = [[r["route"], r["method"], r["path"], r["body"]] for r in self.received]
        return "Recorded requests", ["route", "method", "path", "body"], rows
