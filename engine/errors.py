"""The whole exception tree of relay, in one place.

    RelayError
    ├── PresetError            one located problem in a preset or settings file
    ├── PresetErrors           all problems found in one preset (``.errors``)
    ├── SettingsError          settings that do not fit the preset's declaration
    ├── EventError             an input event that cannot be read (bad JSON, not an object)
    ├── RenderError            an event that could not be turned into a request
    │   └── RequestSchemaError the rendered body failed the destination's request schema
    ├── GoldenError            a golden case file that cannot be used
    └── DeliveryError          a request the vendor did not accept (see ``retryable``)

Messages never contain secret values: render errors name the preset, the field
and the event's position, never settings; delivery errors carry the vendor's own
(redacted) message.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DeliveryError",
    "EventError",
    "GoldenError",
    "Location",
    "PresetError",
    "PresetErrors",
    "RelayError",
    "RenderError",
    "RequestSchemaError",
    "SettingsError",
]


class RelayError(Exception):
    """Base class of every error relay raises on purpose."""


@dataclass(frozen=True)
class Location:
    """Where a YAML node starts: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class PresetError(RelayError):
    """One problem at one place: ``file:line:col: /json/pointer: message``."""

    def __init__(
        self,
        message: str,
        *,
        pointer: str = "",
        location: Location | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.pointer = pointer
        self.location = location
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.location) if self.location else "<unknown>"
        text = f"{where}: {self.pointer or '/'}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class PresetErrors(RelayError):
    """Every problem found in one preset, reported together."""

    def __init__(self, errors: list[PresetError]) -> None:
        self.errors = sorted(errors, key=_error_order)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''}"
        return head + ":\n" + "\n".join(f"  {e}" for e in self.errors)


def _error_order(error: PresetError) -> tuple[str, int, int, str]:
    loc = error.location
    return (loc.file, loc.line, loc.col, error.message) if loc else ("", 0, 0, error.message)


class SettingsError(RelayError):
    """Settings that do not fit the preset: names the field, never its value."""

    def __init__(self, preset: str, problems: list[str]) -> None:
        self.preset = preset
        self.problems = problems
        super().__init__(f"settings for preset '{preset}' are invalid:\n" + "\n".join(f"  {p}" for p in problems))


class EventError(RelayError):
    """An input event that is not a JSON object."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        prefix = f"line {line}: " if line is not None else ""
        super().__init__(prefix + message)


class RenderError(RelayError):
    """An event that could not be rendered; names preset, field and event, no values."""

    def __init__(self, preset: str, field: str, message: str, *, event_ref: str = "") -> None:
        self.preset = preset
        self.field = field
        self.event_ref = event_ref
        self.detail = message
        where = f" ({event_ref})" if event_ref else ""
        super().__init__(f"{preset}: {field}: {message}{where}")


class RequestSchemaError(RenderError):
    """The rendered body does not pass the destination's request schema."""


class GoldenError(RelayError):
    """A golden case file that is malformed or cannot be rendered."""


class DeliveryError(RelayError):
    """A request the vendor did not accept.

    ``retryable`` tells the delivery loop whether another attempt may succeed;
    ``hint`` is the preset's troubleshooting advice for this status.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | str | None = None,
        retryable: bool = False,
        hint: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.retryable = retryable
        self.hint = hint
        self.attempts = attempts
        self.detail = message
        text = f"HTTP {status}: {message}" if status is not None else message
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)
