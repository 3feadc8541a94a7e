"""The request functions of a preset's program: one per step, check request and fix.

``step(c, answers, now, S)`` reads the names it needs from the context ``c`` (a plan's, or a
check's), the answers of earlier ``read`` steps and the clock, and returns None when its
``when`` is false, else ``(method, url, headers, body, content, encoding, credential
headers, review)``: ``runtime.build`` makes the Request and checks the body's schema. In
order: ``when``, URL (an absolute http(s) URL), method, body, size, encoding (form fields or
JSON, written to bytes once), headers (which may read the encoded body as ``content``),
auth, the headers' characters, size. A value fixed for a run (the URL of a settings-only
template, the auth header) is computed once, in ``fixed``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from ..expr import helpers
from ..expr.codegen import Scope
from ..expr.emit import Module, Origin, Shared, Writer, literal
from ..expr.leaves import Leaf, context_names, fixed_for_run, has_template, write_tree, write_value
from ..expr.limits import text_size
from ..expr.templates import REDACTED
from .flow import MAX_REQUEST
from .model import METHODS
from .program import FIXED, Hoister
from .wire import Refusal, encode_form, encode_json, form_value

if TYPE_CHECKING:
    from .model import AuthSpec, CompiledPreset, StepSpec

__all__ = [
    "absolute_url",
    "basic",
    "check_size",
    "credential_review",
    "credentials",
    "header_value",
    "method_of",
    "review_of",
    "write_steps",
]

Where = Callable[[str], str]
Review = tuple[tuple[tuple[str | int, ...], Any], ...]
_CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}


#: An absolute http(s) URL whose host needs no further look (plain ASCII, no brackets):
#: ``urlsplit`` would find the scheme and a host in it. Anything else is asked of urlsplit.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#]|\Z)", re.IGNORECASE)


def absolute_url(url: Any, pointer: str) -> str:
    if isinstance(url, str) and _PLAIN_URL.match(url):
        return url
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise Refusal(pointer, "the URL did not render to an absolute http(s) URL")
    return url


def method_of(method: Any, pointer: str) -> str:
    if method not in METHODS:
        raise Refusal(pointer, f"the method rendered to {str(method)[:20]!r}, not one of {sorted(METHODS)}")
    return str(method)


def header_value(value: Any, pointer: str, name: str) -> str:
    """A header's value as text; one that Latin-1 cannot carry is refused."""
    text = value if value.__class__ is str else form_value(value)
    if not text.isascii():
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise Refusal(
                pointer,
                f"header {name!r} has characters an HTTP header cannot carry (it can only carry Latin-1)",
            ) from None
    return text


@lru_cache(maxsize=64)
def basic(username: Any, password: Any) -> str:
    return "Basic " + base64.b64encode(f"{username or ''}:{password or ''}".encode()).decode("ascii")


def query_credential(url: str, name: str, value: Any) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode({name: str(value)})


def check_size(size: int, pointer: str) -> None:
    if size > MAX_REQUEST:
        raise Refusal(
            pointer, f"request limit: a rendered request may be at most {MAX_REQUEST:,} characters ({size:,}+)"
        )


def credentials(auths: Any, context: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The credential headers and query parameters a request with ``auths`` carries in
    ``context`` (what a fake of the vendor must accept), from the auth's compiled templates."""
    for when, spec in auths:
        if when is not None and not when(context):
            continue
        values = {name: leaf(context) for name, leaf in spec.fields.items()}
        if spec.kind == "basic":
            return {"Authorization": basic(values.get("username"), values.get("password"))}, {}
        if spec.kind == "bearer":
            return {"Authorization": f"Bearer {values['token']}"}, {}
        if spec.kind == "api_key" and spec.location == "header":
            return {spec.name: str(values["value"])}, {}
        if spec.kind == "api_key":
            return {}, {spec.name: str(values["value"])}
        break
    return {}, {}


_BASIC_REVIEW: Review = ((("headers", "Authorization"), f"Basic {REDACTED}"),)
_BEARER_REVIEW: Review = ((("headers", "Authorization"), f"Bearer {REDACTED}"),)


def credential_review(spec: AuthSpec) -> Review:
    """What a review shows for the credential header ``spec`` adds (none for one in the query)."""
    if spec.kind == "basic":
        return _BASIC_REVIEW
    if spec.kind == "bearer":
        return _BEARER_REVIEW
    if spec.kind == "api_key" and spec.location == "header":
        return ((("headers", spec.name), spec.shown),)
    return ()


def review_of(
    step: StepSpec,
    c: Mapping[str, Any],
    answers: Mapping[str, Any],
    now: float,
    url: str,
    shown_query: str | None,
    credential: Review,
) -> Review:
    """What a review shows where the request holds a value derived from a secret (worked out
    only when a review asks: sending needs none)."""
    context = {**c, **answers, "now": now}
    shown = {path: review(context) for path, review in step.secret_leaves}
    shown.update(credential)
    if shown_query is not None:
        before = shown.get(("url",), url)
        shown[("url",)] = f"{before}{'&' if urlsplit(before).query else '?'}{shown_query}"
    return tuple(shown.items())


class _Step:
    def __init__(
        self, module: Module, preset: CompiledPreset, hoister: Hoister, where: Where, step: StepSpec, honour_when: bool
    ) -> None:
        self.honour_when = honour_when
        self.module = module
        self.preset = preset
        self.step = step
        self.where = where
        self.hoister = hoister
        self.writer = Writer(module)
        self.binds = [s.bind for s in preset.steps if s.bind is not None]
        leaves = self.leaves()
        self.reads = set().union(*(leaf.names for leaf in leaves)) if leaves else set()
        names = self.reads | {"now", "content"}
        dicts = frozenset({"settings", "constants", "fields"})
        # complete: a plan's context holds every name its requests read (a hand-made context that
        # does not fails where the name is read, as undefined)
        self.shared = Shared(module)
        self.scope = Scope(
            context_names(names), dicts=dicts, fixed=FIXED, hoist=hoister, complete=True, share=self.shared
        )

    def leaves(self) -> list[Leaf]:
        step = self.step
        found = [step.when, step.method, step.url, step.headers, step.body]
        for when, auth in step.auth:
            found += [when, *auth.fields.values()]
        found += [review for _path, review in step.secret_leaves]
        return [leaf for leaf in found if isinstance(leaf, Leaf)]

    def name(self, value: Any, hint: str) -> str:
        return self.module.name(value, hint)

    def origin(self, pointer: str) -> Origin:
        return Origin(pointer, self.where(pointer))

    def leaf(self, leaf: Any, pointer: str) -> tuple[str, bool]:
        """The code of a one-string tree (url, method, a header, an auth field), and whether it
        is fixed for a run (then it is computed once)."""
        source = leaf.source if isinstance(leaf, Leaf) else leaf
        if not isinstance(source, str) or not has_template(source):
            return (literal(source) or self.name(source, "const")), True
        previous, self.writer.origin = self.writer.origin, self.origin(pointer)
        self.hoister.origin = self.writer.origin
        try:
            if fixed_for_run(source, self.scope):
                return self.hoister(write_value(self.module, self.writer, source, self.scope), True), True
            return write_tree(self.module, self.writer, source, self.scope, pointer, self.where), False
        finally:
            self.writer.origin = previous

    def fixed(self, code: str, fixed: bool) -> str:
        """``code``, computed once per run when it is fixed."""
        return self.hoister(code, True) if fixed else code

    def write(self) -> str:
        step, writer = self.step, self.writer
        pointer = step.pointer
        first: set[str] = set()
        if isinstance(step.when, Leaf) and self.honour_when:  # a check's request is always sent
            first = set(step.when.names)  # a request whose `when` is false reads nothing more
            self.bind(first)
            condition = write_value(self.module, writer, step.when.source, self.scope)
            writer.line(f"if not {condition}:", self.origin(f"{pointer}/when"))
            with writer.block():
                writer.line("return None")
        self.bind(self.reads - first)
        url, fixed = self.leaf(step.url, f"{pointer}/url")
        check = f"{self.name(absolute_url, 'absolute_url')}({url}, {pointer + '/url'!r})"
        writer.line(f"_url = {self.fixed(check, fixed)}", self.origin(f"{pointer}/url"))
        method, fixed = self.leaf(step.method, f"{pointer}/method")
        if fixed and isinstance(step.method, Leaf) and step.method.source in METHODS:
            writer.line(f"_method = {method}")
        else:
            check = f"{self.name(method_of, 'method_of')}({method}, {pointer + '/method'!r})"
            writer.line(f"_method = {self.fixed(check, fixed)}", self.origin(f"{pointer}/method"))
        self.body()
        self.headers()
        self.auth()
        if step.check_size:
            size = f"len(_url) + {self.name(text_size, 'text_size')}(_headers, {MAX_REQUEST}) + len(_content)"
            writer.line(f"{self.name(check_size, 'check_size')}({size}, {pointer!r})")
        review = "_credential"
        if step.secret_leaves or self.query:
            later = f"{self.name(review_of, 'review_of')}, STEP, c, answers or {{}}, now, _plain_url, _shown_query"
            review = f"{self.name(partial, 'partial')}({later}, _credential)"
        writer.line(f"return (_method, _url, _headers, _decoded, _content, {step.encoding!r}, _credentials, {review})")
        self.shared.resolve(writer)
        function = self.module.fresh(f"step_{step.name}")
        self.module.add(
            f"def {function}(c, answers, now, S, STEP={self.name(step, 'spec')}):", writer, self.origin(pointer)
        )
        return function

    def bind(self, reads: set[str]) -> None:
        writer, undefined = self.writer, self.name(helpers.undefined, "undefined")
        context = sorted(name for name in reads if name not in (*self.binds, "now", "content"))
        if context:
            writer.line("try:")
            with writer.block():
                for name in context:
                    writer.line(f"n_{name} = c[{name!r}]")
            writer.line("except KeyError:")
            with writer.block():
                for name in context:
                    writer.line(f"n_{name} = c[{name!r}] if {name!r} in c else {undefined}({name!r})")
        for name in self.binds:
            if name in reads:
                writer.line(f"n_{name} = answers.get({name!r}) if answers else None")
        if "now" in reads:
            writer.line("n_now = now")

    def body(self) -> None:
        step, writer = self.step, self.writer
        pointer = step.pointer
        if not isinstance(step.body, Leaf):
            writer.line("_decoded = None")
            writer.line("_content = b''")
            writer.line("n_content = ''")
            return
        code = write_tree(self.module, writer, step.body.source, self.scope, f"{pointer}/body", self.where)
        writer.line(f"_body = {code}")
        if step.check_size:  # before the body is encoded: a body can hold one long value many times
            size = f"len(_url) + {self.name(text_size, 'text_size')}(_body, {MAX_REQUEST})"
            writer.line(f"{self.name(check_size, 'check_size')}({size}, {pointer!r})")
        if step.encoding == "form":
            writer.line(f"_decoded, n_content = {self.name(encode_form, 'encode_form')}(_body, {pointer + '/body'!r})")
            writer.line("_content = n_content.encode('ascii')")
        else:
            writer.line("_decoded = _body")
            writer.line(f"n_content = '' if _body is None else {self.name(encode_json, 'encode_json')}(_body)")
            writer.line("_content = n_content.encode()")  # the one copy: text to bytes

    def headers(self) -> None:
        step, writer = self.step, self.writer
        pointer = step.pointer
        writer.line("_headers = {}")
        if isinstance(step.body, Leaf):
            content_type = repr(_CONTENT_TYPES[step.encoding])
            writer.line(f"if _decoded is not None: _headers['Content-Type'] = {content_type}")
        source = step.headers.source if isinstance(step.headers, Leaf) else step.headers
        check = self.name(header_value, "header_value")
        if isinstance(source, dict):
            for key, value in source.items():
                if value is None:
                    continue
                field = f"{pointer}/headers/{key}"
                code, fixed = self.leaf(value, field)
                if not fixed:
                    writer.line(f"if {code} is not None:")
                    with writer.block():
                        writer.line(f"_headers[{key!r}] = {check}({code}, {field!r}, {key!r})", self.origin(field))
                else:
                    writer.line(f"_headers[{key!r}] = {self.fixed(f'{check}({code}, {field!r}, {key!r})', True)}")
        elif source is not None:  # one template for all the headers: a mapping at render time
            code = write_tree(self.module, writer, source, self.scope, f"{pointer}/headers", self.where)
            writer.line(f"for _key, _value in ({code} or {{}}).items():")
            with writer.block():
                writer.line(f"_headers[_key] = {check}(_value, {pointer + '/headers/'!r} + str(_key), _key)")

    def auth(self) -> None:
        step, writer = self.step, self.writer
        self.query = False
        if step.secret_leaves or any(spec.kind == "api_key" and spec.location != "header" for _w, spec in step.auth):
            writer.line("_plain_url = _url")  # for the review, worked out when one asks
            writer.line("_shown_query = None")
        writer.line(f"_credentials = {self.name(frozenset(), 'NO_CREDENTIALS')}")
        writer.line("_credential = ()")
        keyword = "if"
        for when, spec in step.auth:
            if isinstance(when, Leaf):
                condition = write_value(self.module, writer, when.source, self.scope)
                writer.line(f"{keyword} {condition}:", self.origin(f"{step.pointer}/auth/when"))
            else:
                writer.line("else:" if keyword == "elif" else "if True:")
            with writer.block():
                self.credential(spec)
            if when is None:
                break
            keyword = "elif"

    def credential(self, spec: AuthSpec) -> None:
        writer, pointer = self.writer, f"{self.step.pointer}/auth"
        codes = {name: self.leaf(leaf, f"{pointer}/{name}") for name, leaf in spec.fields.items()}
        fixed = all(is_fixed for _code, is_fixed in codes.values())
        check = self.name(header_value, "header_value")
        if spec.kind in ("basic", "bearer"):
            if spec.kind == "basic":
                username, password = (codes.get(name, ("None", True))[0] for name in ("username", "password"))
                value = f"{self.name(basic, 'basic')}({username}, {password})"
            else:
                value = f"'Bearer ' + str({codes['token'][0]})"
            checked = f"{check}({value}, {pointer!r}, 'Authorization')"
            writer.line(f"_headers['Authorization'] = {self.fixed(checked, fixed)}")
            writer.line("_credentials = " + self.name(frozenset({"Authorization"}), "AUTHORIZATION"))
            writer.line(f"_credential = {self.name(credential_review(spec), 'review')}")
        elif spec.kind == "api_key" and spec.location == "header":
            value = f"str({codes['value'][0]})"
            checked = f"{check}({value}, {pointer!r}, {spec.name!r})"
            writer.line(f"_headers[{spec.name!r}] = {self.fixed(checked, fixed)}")
            writer.line("_credentials = " + self.name(frozenset({spec.name}), "credentials"))
            writer.line(f"_credential = {self.name(credential_review(spec), 'review')}")
        elif spec.kind != "api_key":  # none: no credential
            writer.line("pass")
        else:
            self.query = True
            adding = f"{self.name(query_credential, 'query_credential')}(_url, {spec.name!r}, {codes['value'][0]})"
            writer.line(f"_url = {adding}")
            writer.line(f"_shown_query = {quote(spec.name) + '=' + spec.shown!r}")


def write_steps(
    module: Module, preset: CompiledPreset, hoister: Hoister, where: Where
) -> tuple[dict[str, str], frozenset[str]]:
    """Write the function of every request of ``preset``: their names, by the request's
    pointer, and the pointers of those that read only settings and constants (the same
    request for a whole run)."""
    requests = [(step, True) for step in preset.steps]
    for check in preset.checks:
        requests.append((check.request, False))
        if check.fix is not None:
            requests.append((check.fix, False))
    names, fixed = {}, set()
    for step, event in requests:
        writing = _Step(module, preset, hoister, where, step, event)
        names[step.pointer] = writing.write()
        if writing.reads <= FIXED | {"content"}:  # its body's own bytes are fixed too
            fixed.add(step.pointer)
    return names, frozenset(fixed)
