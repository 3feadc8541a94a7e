"""The compiled form of a preset: frozen, typed, ready to render events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .policy import CheckSpec, DeliveryPolicy, LookupSpec
from .settings import Settings, SettingSpec, resolve_settings
from .templating import Renderer

if TYPE_CHECKING:
    from .decision import Decision
    from .schema import BodyValidator
    from .yamlsource import SourceDoc

__all__ = [
    "AuthSpec",
    "CompiledPreset",
    "MappingSpec",
    "MatchClause",
    "RequestSpec",
    "RuleSpec",
    "SelectorSpec",
    "SignatureSpec",
]


@dataclass(frozen=True)
class SelectorSpec:
    name: str
    paths: tuple[str, ...]
    searchers: tuple[Callable[[Any], Any], ...]
    transform: Renderer | None
    default: Any
    #: (path, search) pairs, zipped once at load time.
    pairs: tuple[tuple[str, Callable[[Any], Any]], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pairs", tuple(zip(self.paths, self.searchers, strict=True)))


@dataclass(frozen=True)
class RuleSpec:
    name: str
    pointer: str
    when: Renderer | None
    drop: str | None
    sets: tuple[tuple[str, Renderer], ...]


@dataclass(frozen=True)
class MatchClause:
    types: frozenset[str] | None
    events: frozenset[str] | None
    when: Renderer | None


@dataclass(frozen=True)
class MappingSpec:
    name: str
    pointer: str
    clauses: tuple[MatchClause, ...]
    fields: Renderer


@dataclass(frozen=True)
class AuthSpec:
    kind: str
    fields: dict[str, Renderer]
    scheme: str = "Bearer"
    location: str = "header"
    name: str = ""


@dataclass(frozen=True)
class SignatureSpec:
    algorithm: str
    secret: Renderer
    header: str
    value: Renderer
    timestamp_header: str | None
    timestamp_unit: str
    when: Renderer | None


@dataclass
class RequestSpec:
    name: str
    method: Renderer
    url: Renderer
    url_source: str
    #: (when, auth) pairs: the first whose ``when`` is absent or true applies.
    auth: tuple[tuple[Renderer | None, AuthSpec], ...]
    headers: Renderer
    encoding: str
    body: Renderer
    validator: BodyValidator | None
    schema_path: Path
    signature: SignatureSpec | None
    #: (when, spec) pairs tried in order before falling back to this spec.
    variants: tuple[tuple[Renderer, RequestSpec], ...] = ()

    def choose(self, context: Mapping[str, Any]) -> RequestSpec:
        for when, variant in self.variants:
            if when(context):
                return variant
        return self


@dataclass(frozen=True)
class CompiledPreset:
    """A validated, compiled preset. ``render`` turns one event into a Decision."""

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

    def resolve_settings(self, raw: dict[str, Any], environ: dict[str, str] | None = None) -> Settings:
        return resolve_settings(self.name, self.settings, raw, environ)

    def render(
        self,
        event: Any,
        settings: Settings,
        *,
        event_ref: str = "",
        lookup: Any = None,
        looked_up: bool = False,
        now: float | None = None,
    ) -> Decision:
        """Render ``event``. With a ``request.lookup``, pass its parsed answer as ``lookup``
        (None for "missing") and ``looked_up=True`` to render the final request."""
        from .render import render

        return render(self, event, settings, event_ref=event_ref, lookup=lookup, looked_up=looked_up, now=now)
