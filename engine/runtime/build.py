"""Build HTTP requests from a Plan, one step at a time: auth, headers, encoding, schema check.

Pure: no I/O; the clock is passed in (``now`` is a name templates may read). The
encoded bytes are exactly what the transport sends. An event's steps, preflight checks and
their fixes run the functions the preset's program holds for them (``relay compile`` shows
them). The requests a batch adds (the bulk request, a job's status request, a results
request) are put together by ``assemble`` from their compiled leaves. Headers are rendered
after the body is encoded and may read it as ``content``: that is how a preset signs the
exact bytes it sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from ..errors import RenderError
from ..expr.limits import text_size
from ..preset.flow import MAX_REQUEST
from ..preset.model import Auths, CompiledPreset, StepSpec
from ..preset.program_steps import absolute_url, check_size, credential_review, header_value, method_of, review_of
from ..preset.program_steps import credentials as _credentials
from ..preset.wire import Refusal, encode_form, encode_json, form_value
from .decide import failure, reference, render_error
from .decision import Plan, Request, Review

if TYPE_CHECKING:
    from ..preset.schema import BodyValidator

__all__ = [
    "answers_scope",
    "assemble",
    "build",
    "build_all",
    "build_check_request",
    "credentials",
    "event_requests",
    "failer",
    "form_value",
    "schema_problem",
]

_CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
Fail = Callable[[str, str], RenderError]


def build(
    preset: CompiledPreset, plan: Plan, step: StepSpec, *, answers: Mapping[str, Any] | None = None, now: float
) -> Request | None:
    """The request ``step`` makes for a ``send`` plan, or None when its ``when`` is false (or
    it is sent only batched: ``batch.only``).

    ``answers`` binds what earlier steps read (their ``as`` names); a read step whose
    answer is not given reads as null ("nothing there yet").
    """
    if step.batch is not None and step.batch.only:  # no one-by-one form: it goes only in a batch
        if plan.trace is not None:
            plan.trace.steps.append({"step": step.name, "effect": "skipped: it is sent only batched"})
        return None
    program = preset.program
    assert program is not None, "a preset is compiled when it loads"
    fixed = plan.fixed or program.fixed(plan.context.get("settings") or {}, preset.constants)
    try:
        made = program.steps[step.pointer](plan.context, answers, now, fixed)
    except Exception as error:  # a template, or a request relay will not send: located
        raise _step_failure(preset, step, plan.secrets, plan.event_ref, plan.context, error=error) from None
    trace = plan.trace
    if made is None:
        if trace is not None:
            trace.steps.append({"step": step.name, "effect": "skipped: its `when` is false"})
        return None
    request = _request(step, made)
    if step.validator is not None and not step.validator.accepts(request.body):
        raise _step_failure(preset, step, plan.secrets, plan.event_ref, plan.context, body=request.body)
    if trace is not None:
        trace.steps.append({"step": step.name, "effect": f"{request.method} {step.role}"})
    return request


def build_all(
    preset: CompiledPreset, plan: Plan, *, answers: Mapping[str, Any] | None = None, now: float
) -> tuple[Request, ...]:
    """Every request a ``send`` plan makes, in order: ``build`` for each step, in one loop."""
    if plan.trace is not None:  # a review: each step says what it did
        return tuple(
            r for step in preset.steps if (r := build(preset, plan, step, answers=answers, now=now)) is not None
        )
    program = preset.program
    assert program is not None, "a preset is compiled when it loads"
    fixed = plan.fixed or program.fixed(plan.context.get("settings") or {}, preset.constants)
    return event_requests(preset, plan.context, answers, now, fixed, plan.secrets, plan.event_ref)


def event_requests(
    preset: CompiledPreset,
    context: Mapping[str, Any],
    answers: Mapping[str, Any] | None,
    now: float,
    fixed: tuple[Any, ...],
    secrets: tuple[str, ...],
    event_ref: str,
) -> tuple[Request, ...]:
    """The requests of an event's send context (a plan's, or ``decide``'s verdict's), in order,
    untraced: what an event's render and its first attempt pay per step is one call of the
    step's function, the Request, and the schema's verdict."""
    program = preset.program
    assert program is not None, "a preset is compiled when it loads"
    requests = []
    for step, function in program.event_steps(preset):
        try:
            made = function(context, answers, now, fixed)
        except Exception as error:
            raise _step_failure(preset, step, secrets, event_ref, context, error=error) from None
        if made is not None:
            method, url, headers, body, content, encoding, credentials, review = made
            request = Request(method, url, headers, body, content, encoding, credentials, step.name, step.role, review)
            if step.validator is not None and not step.validator.accepts(body):
                raise _step_failure(preset, step, secrets, event_ref, context, body=body)
            requests.append(request)
    return tuple(requests)


def _request(step: StepSpec, made: tuple[Any, ...]) -> Request:
    method, url, headers, body, content, encoding, credentials, review = made
    return Request(method, url, headers, body, content, encoding, credentials, step.name, step.role, review)


def _step_failure(
    preset: CompiledPreset,
    step: StepSpec,
    secrets: tuple[str, ...],
    event_ref: str,
    context: Mapping[str, Any],
    *,
    error: Exception | None = None,
    body: Any = None,
) -> RenderError:
    """A step's failure, located: what its function raised (``error``), else why its request
    schema refuses ``body``."""
    event_ref = event_ref or reference(context.get("event"))
    if error is not None:
        return failure(preset, error, secrets, event_ref, step.pointer)
    assert step.validator is not None
    problem = schema_problem(step.validator, body, f"{step.pointer}/body")
    assert problem is not None, "a body the validator refuses has a problem to name"
    return render_error(preset, problem[0], problem[1], secrets, event_ref, schema=True)


def build_check_request(
    preset: CompiledPreset, step: StepSpec, context: Mapping[str, Any], secrets: tuple[str, ...], now: float
) -> Request:
    """A preflight check's request, or its fix: the preset's auth, no request schema."""
    program = preset.program
    assert program is not None, "a preset is compiled when it loads"
    fixed = program.fixed(context.get("settings") or {}, preset.constants)
    try:
        made = program.steps[step.pointer](context, None, now, fixed)
    except Exception as error:
        raise failure(preset, error, secrets, "", step.pointer) from None
    method, url, headers, body, content, encoding, credentials, review = made
    return Request(method, url, headers, body, content, encoding, credentials, step.name, step.role, review)


def credentials(
    preset: CompiledPreset, step: StepSpec, context: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The credential headers and query parameters ``step`` carries in ``context`` (a settings
    scope): what a fake of the vendor must accept."""
    try:
        return _credentials(step.auth, {**context, "now": 0.0})
    except Exception as error:
        raise failure(preset, error, (), "", f"{step.pointer}/auth") from None


def schema_problem(validator: BodyValidator, body: Any, pointer: str, what: str = "body") -> tuple[str, str] | None:
    """None when ``body`` passes ``validator`` (its one verdict, compiled at load time); else
    the pointer of the first failing part (under ``pointer``, the template that produced it)
    and a message naming every problem."""
    if validator.accepts(body):
        return None
    errors = validator.errors(body)  # only for a refused body: the messages
    schema = "item schema" if what == "item" else "request schema"
    if not errors:
        return pointer, f"the rendered {what} fails its {schema}: {validator.refusal(body)}"
    problems = [f"{'/'.join(map(str, e.absolute_path)) or f'({what})'}: {e.message}" for e in errors]
    first = min(errors, key=lambda e: list(map(str, e.absolute_path)))
    field = pointer + "".join(f"/{part}" for part in first.absolute_path)
    return field, f"the rendered {what} fails its {schema}: " + "; ".join(sorted(problems))


def answers_scope(preset: CompiledPreset, answers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every ``as`` name of the preset, bound to its answer in ``answers`` (null when not given)."""
    given = answers or {}
    return {step.bind: given.get(step.bind) for step in preset.steps if step.bind is not None}


def _apply_auth(
    auths: Auths, context: Mapping[str, Any], url: str, headers: dict[str, str]
) -> tuple[str, set[str], str | None, Review]:
    """Add the credential (the program's own ``credentials``). Returns the URL, the credential
    headers, what a review shows for a credential in the query string (``key=<redacted>``),
    and what it shows for a credential header."""
    auth = next((a for when, a in auths if when is None or when(context)), None)
    if auth is None:
        return url, set(), None, ()
    found, query = _credentials(((None, auth),), context)
    headers.update(found)
    if not query:
        return url, set(found), None, credential_review(auth)
    url += _query_separator(url) + urlencode(query)
    return url, set(found), f"{quote(auth.name)}={auth.shown}", credential_review(auth)


def _query_separator(url: str) -> str:
    return "&" if urlsplit(url).query else "?"


def assemble(step: StepSpec, context: Mapping[str, Any], *, fail: Fail) -> Request:
    """The request of ``step`` in ``context`` (no schema check; ``build`` adds it), checked
    and encoded by the same functions as the program's request functions."""
    try:
        return _assembled(step, context)
    except Refusal as refusal:  # a request relay will not send: located where it went wrong
        raise fail(refusal.pointer, refusal.message) from None


def _assembled(step: StepSpec, context: Mapping[str, Any]) -> Request:
    pointer = step.pointer
    url = absolute_url(step.url(context), f"{pointer}/url")
    method = method_of(step.method(context), f"{pointer}/method")
    body = step.body(context) if step.body is not None else None
    if step.check_size:  # before the body is encoded: a body can hold one long value many times
        check_size(len(url) + text_size(body, MAX_REQUEST), pointer)
    decoded: Any = None
    content = b""
    if body is not None and step.encoding == "form":
        decoded, text = encode_form(body, f"{pointer}/body")
        content = text.encode("ascii")
    elif body is not None:
        decoded, content = body, encode_json(body).encode()
    out_headers = {"Content-Type": _CONTENT_TYPES[step.encoding]} if body is not None else {}
    for name, value in step.headers({**context, "content": content.decode("utf-8")}).items():
        out_headers[name] = header_value(value, f"{pointer}/headers/{name}", name)
    plain_url = url
    url, credential_headers, query_credential, credential = _apply_auth(step.auth, context, url, out_headers)
    for name in credential_headers:
        header_value(out_headers[name], f"{pointer}/auth", name)
    if step.check_size:
        check_size(len(url) + text_size(out_headers, MAX_REQUEST) + len(content), pointer)
    return Request(
        method=method,
        url=url,
        headers=out_headers,
        body=decoded,
        content=content,
        encoding=step.encoding,
        credential_headers=frozenset(credential_headers),
        step=step.name,
        role=step.role,
        review=partial(review_of, step, context, {}, context.get("now", 0.0), plain_url, query_credential, credential)
        if step.secret_leaves or query_credential
        else credential,
    )


def failer(preset: CompiledPreset, secrets: tuple[str, ...], event_ref: str) -> Fail:
    """How a failure while assembling a request is raised: located, secrets redacted."""

    def fail(field: str, message: str) -> RenderError:
        return render_error(preset, field, message, secrets, event_ref)

    return fail
