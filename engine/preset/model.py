"""The compiled form of a preset: frozen, typed, ready to render events.

Everything here is data produced by the compiler. The delivery policy is here as
a *spec* (what the preset declares); what delivery does with it (backoff,
classification, Retry-After) lives in ``relay.delivery``. Specs keep the source
text they were compiled from, so docs and studio can show the preset as written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..expr.paths import Search
from ..expr.templates import Renderer
from .settings import Settings, SettingSpec, resolve_settings

if TYPE_CHECKING:
    from .flow import SecretLeaf
    from .schema import BodyValidator
    from .source import SourceDoc

__all__ = [
    "METHODS",
    "NO_ANSWER",
    "AuthSpec",
    "CheckSpec",
    "CompiledPreset",
    "DeliveryPolicy",
    "LookupSpec",
    "MappingSpec",
    "MatchClause",
    "RequestSpec",
    "ResponseRule",
    "RuleSpec",
    "SelectorSpec",
    "SignatureSpec",
    "Status",
    "SubRequestSpec",
    "status_matcher",
]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
#: An HTTP status, or ``timeout`` / ``connection_error`` when there was no answer.
Status = int | str


#: Statuses a transport reports when there is no HTTP answer at all.
NO_ANSWER = ("timeout", "connection_error")


def status_matcher(pattern: int | str) -> Callable[[Status], bool]:
    """``404``, ``"4xx"``, ``"500-504"``, ``"timeout"`` or ``"connection_error"``."""
    if isinstance(pattern, int) or pattern in NO_ANSWER:
        return lambda status: status == pattern
    if pattern.endswith("xx"):
        hundred = int(pattern[0])
        return lambda status: isinstance(status, int) and status // 100 == hundred
    if "-" in pattern:
        low, high = (int(p) for p in pattern.split("-"))
        return lambda status: isinstance(status, int) and low <= status <= high
    exact = int(pattern)
    return lambda status: status == exact


@dataclass(frozen=True)
class SelectorSpec:
    name: str
    paths: tuple[str, ...]
    searchers: tuple[Search, ...]
    transform: Renderer | None
    default: Any
    transform_source: str | None = None
    #: (path, search) pairs, zipped once at load time.
    pairs: tuple[tuple[str, Search], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pairs", tuple(zip(self.paths, self.searchers, strict=True)))


@dataclass(frozen=True)
class RuleSpec:
    name: str
    pointer: str
    when: Renderer | None
    drop: str | None
    sets: tuple[tuple[str, Renderer], ...]
    when_source: str | None = None
    #: The values ``set`` writes, as written in the preset.
    set_sources: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MatchClause:
    #: The event types and event names that fit, in the order written; None: any.
    types: tuple[str, ...] | None
    events: tuple[str, ...] | None
    when: Renderer | None
    when_source: str | None = None


@dataclass(frozen=True)
class MappingSpec:
    name: str
    pointer: str
    clauses: tuple[MatchClause, ...]
    fields: Renderer
    #: Dotted paths of the leaves this mapping's own ``fields`` set.
    field_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthSpec:
    kind: str
    fields: dict[str, Renderer]
    scheme: str = "Bearer"
    location: str = "header"
    name: str = ""
    when_source: str | None = None


@dataclass(frozen=True)
class SignatureSpec:
    algorithm: str
    secret: Renderer
    header: str
    value: Renderer
    timestamp_header: str | None
    timestamp_unit: str
    when: Renderer | None
    when_source: str | None = None


@dataclass
class RequestSpec:
    name: str
    pointer: str
    method: Renderer
    url: Renderer
    #: (when, auth) pairs: the first whose ``when`` is absent or true applies.
    auth: tuple[tuple[Renderer | None, AuthSpec], ...]
    headers: Renderer
    encoding: str
    body: Renderer
    validator: BodyValidator | None
    schema_path: Path
    signature: SignatureSpec | None
    method_source: str = ""
    url_source: str = ""
    schema_source: str = ""
    when_source: str | None = None
    #: (when, spec) pairs tried in order before falling back to this spec.
    variants: tuple[tuple[Renderer, RequestSpec], ...] = ()
    #: Where this request holds values derived from secret settings, and what reviews show there.
    secret_leaves: tuple[SecretLeaf, ...] = ()
    #: True when the rendered request could pass MAX_REQUEST, so its size is checked.
    check_size: bool = False
    #: The url, method, headers and body as written, and each template leaf in them by
    #: its place in the request: what a variant inherits.
    sources: Mapping[str, Any] = field(default_factory=dict)
    leaf_sources: tuple[tuple[tuple[str | int, ...], str], ...] = ()

    def choose(self, context: Mapping[str, Any]) -> RequestSpec:
        for when, variant in self.variants:
            if when(context):
                return variant
        return self


@dataclass(frozen=True)
class SubRequestSpec:
    """A lookup, check or fix request: the main request's auth, no request schema."""

    method: str
    url: Renderer
    headers: Renderer
    body: Renderer | None
    encoding: str
    url_source: str = ""
    secret_leaves: tuple[SecretLeaf, ...] = ()
    check_size: bool = False


@dataclass(frozen=True)
class LookupSpec:
    """Read before write: GET ``request``, bind the parsed answer to ``name``."""

    name: str
    missing: frozenset[int]
    request: SubRequestSpec


@dataclass(frozen=True)
class CheckSpec:
    name: str
    description: str
    request: SubRequestSpec
    expect: dict[int, Renderer]
    foreach: Renderer | None
    assertion: Renderer | None
    message: Renderer | None
    fix: SubRequestSpec | None


@dataclass(frozen=True)
class ResponseRule:
    matches: Callable[[Status], bool]
    when: Renderer | None
    outcome: str  # success | retry | fail
    hint: Renderer | None
    status_source: str = ""
    when_source: str | None = None
    hint_source: str | None = None


@dataclass(frozen=True)
class DeliveryPolicy:
    """What the preset declares about delivery; defaults come from the preset schema."""

    order_by: Renderer | None
    responses: tuple[ResponseRule, ...]
    error_message: tuple[Search, ...]
    max_attempts: int
    backoff_base: float
    backoff_max: float
    rate: float | None
    burst: int
    connect_timeout: float
    read_timeout: float
    order_by_source: str | None = None


@dataclass(frozen=True)
class CompiledPreset:
    """A validated, compiled preset. ``relay.render`` turns one event into a Decision."""

    name: str
    path: Path
    metadata: dict[str, Any]
    settings: dict[str, SettingSpec]
    selectors: dict[str, SelectorSpec]
    variables: dict[str, Any]
    rules: tuple[RuleSpec, ...]
    base_fields: Renderer
    mappings: tuple[MappingSpec, ...]
    unmapped_reason: str
    request: RequestSpec
    delivery: DeliveryPolicy
    lookup: LookupSpec | None
    checks: tuple[CheckSpec, ...]
    constants: dict[str, Any]
    source: SourceDoc = field(repr=False)
    #: Dotted paths of the leaves of the shared ``fields``.
    shared_field_names: tuple[str, ...] = ()

    def resolve_settings(self, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
        return resolve_settings(self.name, self.settings, raw, environ)
