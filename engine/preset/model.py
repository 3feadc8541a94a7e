"""The compiled form of a preset: frozen, typed, ready to render events.

Everything here is data produced by the compiler. The delivery policy is here as
a *spec* (what the preset declares); what delivery does with it (backoff,
classification, Retry-After) lives in ``relay.delivery``. Specs keep the source
text they were compiled from, so docs and studio can show the preset as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..expr.paths import Search
from ..expr.templates import Renderer
from .settings import Settings, SettingSpec, resolve_settings

if TYPE_CHECKING:
    from .flow import SecretLeaf
    from .program import Program
    from .schema import BodyValidator
    from .source import SourceDoc

__all__ = [
    "METHODS",
    "NO_ANSWER",
    "ROLES",
    "AuthSpec",
    "BatchSpec",
    "CheckSpec",
    "CompiledPreset",
    "DeliveryPolicy",
    "JobSpec",
    "MappingSpec",
    "MatchClause",
    "ResponseRule",
    "ResultsSpec",
    "RuleSpec",
    "SelectorSpec",
    "Status",
    "StepSpec",
]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
#: A request's role: ``read`` (no side effects; its answer may be bound; sent again on a
#: retry), ``write`` (an idempotent upsert), ``track`` (an event that must not be sent twice).
ROLES = ("read", "write", "track")
#: An HTTP status, or ``timeout`` / ``connection_error`` when there was no answer.
Status = int | str


#: Statuses a transport reports when there is no HTTP answer at all.
NO_ANSWER = ("timeout", "connection_error")


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
    #: Any clause may fit; no clauses: every event fits.
    clauses: tuple[MatchClause, ...]
    fields: Renderer
    #: Dotted paths of the leaves this mapping's own ``fields`` set.
    field_names: tuple[str, ...] = ()
    #: Drop the events this mapping takes, with this reason.
    drop: str | None = None


@dataclass(frozen=True)
class AuthSpec:
    kind: str
    fields: dict[str, Renderer]
    location: str = "header"
    name: str = ""
    when_source: str | None = None
    #: What a review shows for an ``api_key`` value: its literal text, each template part
    #: ``<redacted>`` (``Token <redacted>``).
    shown: str = "<redacted>"


#: (when, auth) pairs: the first whose ``when`` is absent or true applies.
Auths = tuple[tuple[Renderer | None, AuthSpec], ...]


@dataclass(frozen=True)
class StepSpec:
    """One HTTP request: a step of an event (``requests``), a preflight check, or its fix."""

    name: str
    pointer: str
    role: str
    when: Renderer | None
    method: Renderer
    url: Renderer
    headers: Renderer
    encoding: str
    body: Renderer | None
    validator: BodyValidator | None
    schema_path: Path | None
    auth: Auths
    #: The name the parsed answer is bound to for later steps (``as``).
    bind: str | None = None
    #: Statuses that mean "nothing there": ``bind`` gets null instead of a failure.
    missing: frozenset[int] = frozenset()
    when_source: str | None = None
    method_source: str = ""
    url_source: str = ""
    schema_source: str = ""
    #: Where this request holds values derived from secret settings, and what reviews show there.
    secret_leaves: tuple[SecretLeaf, ...] = ()
    #: True when the rendered request could pass MAX_REQUEST, so its size is checked.
    check_size: bool = False
    #: How this step carries many events in one request, when the vendor has a bulk API.
    batch: BatchSpec | None = None


@dataclass(frozen=True)
class JobSpec:
    """An asynchronous batch: the submit answer names a job, which is polled until it ends."""

    #: The job's identity, over ``response`` (the submit answer); templates see it as ``job``.
    id: Renderer
    #: The status request; it sees ``job`` and ``group``.
    poll: StepSpec
    every: float
    timeout: float
    #: The job's status, over ``response`` (a poll answer).
    status: Renderer
    done: frozenset[str]
    failed: frozenset[str]
    #: Why a failed job failed, over ``response`` (its last poll answer).
    message: Renderer | None = None


@dataclass(frozen=True)
class ResultsSpec:
    """How the vendor's per-item errors are found in an answer and mapped back to events."""

    #: The list of per-item errors, over ``response`` (the batch's final answer, or the report's).
    errors: Renderer
    #: Which item an error is about: the item's ``key``, or its position in the batch (``index``).
    key: Renderer | None
    index: Renderer | None
    #: The vendor's message for one error, and the preset's advice; both see ``error``.
    message: Renderer | None = None
    hint: Renderer | None = None
    #: Fetch the report only when this holds (over the final answer).
    when: Renderer | None = None
    #: A request that fetches the per-item report (sees ``job``, ``group`` and ``response``).
    request: StepSpec | None = None
    #: How many items the vendor says it refused (over the final answer).
    count: Renderer | None = None


@dataclass(frozen=True)
class BatchSpec:
    """How one step batches: items per event, combined into one bulk request.

    ``item``, ``group`` and ``key`` see the event's scope; ``request`` (the bulk request)
    sees only what every event of the batch shares: ``group``, ``items``, settings,
    constants and ``now``.
    """

    pointer: str
    request: StepSpec
    item: Renderer
    item_validator: BodyValidator | None
    item_schema_path: Path | None
    #: What the events of one batch must share (rendered per event; equal values batch together).
    group: Renderer | None
    #: The vendor's identity of an item: unique within a batch; per-item results map by it.
    key: Renderer | None
    max_items: int
    max_bytes: int | None
    #: Seconds the first waiting event waits for others before a partial batch is sent.
    flush: float
    job: JobSpec | None = None
    results: ResultsSpec | None = None
    #: Batch only the events for which this holds (the others send the request one by one).
    when: Renderer | None = None
    #: The request has no one-by-one form (no ``url`` of its own): it is sent only batched, to
    #: carry what an earlier request's bulk API cannot; without batching it is skipped.
    only: bool = False


@dataclass(frozen=True)
class CheckSpec:
    name: str
    description: str
    request: StepSpec
    expect: dict[int, Renderer]
    foreach: Renderer | None
    assertion: Renderer | None
    message: Renderer | None
    fix: StepSpec | None


@dataclass(frozen=True)
class ResponseRule:
    #: The statuses this rule is for; None: any (its ``when`` decides).
    statuses: frozenset[Status] | None
    when: Renderer | None
    outcome: str  # success | retry | fail | stop
    hint: Renderer | None
    status_source: str = ""
    when_source: str | None = None
    hint_source: str | None = None

    def matches(self, status: Status) -> bool:
        return self.statuses is None or status in self.statuses


@dataclass(frozen=True)
class DeliveryPolicy:
    """What the preset declares about delivery; defaults come from the preset schema."""

    order_by: Renderer | None
    responses: tuple[ResponseRule, ...]
    #: Where the vendor's message is in an error answer (a template over ``response``).
    error_message: Renderer | None
    #: None: retry until the deadline.
    max_attempts: int | None
    #: Seconds a request is retried for, from its first attempt.
    deadline: float
    backoff_base: float
    backoff_max: float
    rate: float | None
    burst: int
    connect_timeout: float
    read_timeout: float
    order_by_source: str | None = None
    error_message_source: str | None = None
    #: When batching, a contact's waiting events are merged into one (later ``fields`` win)...
    coalesce: bool = False
    #: ...but only a run of them for which this renders the same (None: every waiting event).
    coalesce_by: Renderer | None = None
    coalesce_by_source: str | None = None


@dataclass(frozen=True)
class CompiledPreset:
    """A validated, compiled preset. ``relay.render`` turns one event into a Decision."""

    name: str
    path: Path
    metadata: dict[str, Any]
    settings: dict[str, SettingSpec]
    selectors: dict[str, SelectorSpec]
    #: The names rules set, each null until a rule sets it.
    variables: dict[str, Any]
    rules: tuple[RuleSpec, ...]
    base_fields: Renderer
    mappings: tuple[MappingSpec, ...]
    steps: tuple[StepSpec, ...]
    delivery: DeliveryPolicy
    checks: tuple[CheckSpec, ...]
    constants: dict[str, Any]
    source: SourceDoc = field(repr=False)
    #: Dotted paths of the leaves of the shared ``fields``.
    shared_field_names: tuple[str, ...] = ()
    #: The files it was built from: itself, then what it extends, outermost first.
    extends: tuple[str, ...] = ()
    #: The preset compiled to Python (``relay compile`` shows it): what decide and build run.
    program: Program | None = field(default=None, repr=False)

    def resolve_settings(self, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
        return resolve_settings(self.name, self.settings, raw, environ)

    def step(self, name: str) -> StepSpec:
        return next(step for step in self.steps if step.name == name)

    @property
    def batches(self) -> bool:
        """Whether any step of this preset can batch."""
        return any(step.batch is not None for step in self.steps)
