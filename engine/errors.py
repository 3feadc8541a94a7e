"""The whole exception tree of relay, in one place.

    RelayError
    ├── PresetError            one located problem in a preset or settings file
    ├── PresetErrors           all problems found in one preset (``.errors``)
    ├── PresetNotFound         no preset by that name or path (the message lists the known ones)
    ├── TemplateError          a template that does not compile, or uses names it may not
    ├── SettingsError          settings that do not fit the preset's declaration
    ├── InputError             an input relay cannot use: a missing or unreadable file, a bad name
    ├── EventError             an input event that cannot be read (bad JSON, not an object)
    ├── RenderError            an event that could not be turned into a request
    │   └── RequestSchemaError the rendered body failed the destination's request schema
    ├── LeafRenderError        one template leaf failed (internal: the renderer makes it a RenderError)
    ├── LimitError             a template went past a named limit (also a ValueError, like Python's own)
    ├── GoldenError            a golden case file that cannot be used
    │   └── GoldenMismatch     a golden case whose render differs from its expectation
    ├── DeliveryError          a request the vendor did not accept (see ``retryable``, ``stop``)
    ├── RecordError            an outcome could not be recorded (journal or dead letter): the run stops
    ├── Interrupted            the run was asked to stop (Ctrl-C, SIGTERM) before an event finished
    └── TransportError         no HTTP answer at all: a timeout or a connection error

Internal signals derive from RelayError too, and never reach callers as such: delivery's
``JobFailed`` and ``ReportError`` (an asynchronous job or its per-item report failed) become
DeliveryErrors, the transport's ``AnswerTooLarge`` a TransportError naming its limit, and the
collector's ``BodyError`` an HTTP refusal.

The compiler turns every TemplateError into a located PresetError, and the
renderer every LeafRenderError into a RenderError, so callers of the public API
only ever see PresetErrors, SettingsError, EventError, RenderError and the
delivery errors.

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
    "GoldenMismatch",
    "InputError",
    "Interrupted",
    "LeafRenderError",
    "LimitError",
    "Location",
    "PresetError",
    "PresetErrors",
    "PresetNotFound",
    "RecordError",
    "RelayError",
    "RenderError",
    "RequestSchemaError",
    "SettingsError",
    "TemplateError",
    "TransportError",
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


class PresetNotFound(RelayError):
    """No preset by that name or path; the message lists the known ones."""


class TemplateError(RelayError):
    """A template that does not compile or uses names it may not; raised at load time.

    ``line`` counts from the template's first line, so a block scalar can be located.
    """

    def __init__(self, message: str, *, line: int = 1, hint: str | None = None) -> None:
        self.message = message
        self.line = line
        self.hint = hint
        super().__init__(message)


class SettingsError(RelayError):
    """Settings that do not fit the preset, or a settings file that cannot be used:
    names the field (and the file, when there is one), never a value."""

    def __init__(self, preset: str, problems: list[str], *, file: str | None = None) -> None:
        self.preset = preset
        self.problems = problems
        self.file = file
        if file and preset:
            head = f"settings file {file} does not fit preset '{preset}'"
        elif file:
            head = f"settings file {file} cannot be used"
        else:
            head = f"settings for preset '{preset}' are invalid"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in problems))


class InputError(RelayError):
    """An input relay cannot use: a file that is missing or unreadable, a name that is not allowed."""


class EventError(RelayError):
    """An input event that is not a JSON object."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        prefix = f"line {line}: " if line is not None else ""
        super().__init__(prefix + message)


class RenderError(RelayError):
    """An event that could not be rendered; names preset, field and event, no values.

    ``field`` is the JSON pointer of the preset node that failed, and ``location``
    where that node is written (``file:line:col``), so nobody renders twice to find it.
    """

    def __init__(
        self, preset: str, field: str, message: str, *, event_ref: str = "", location: Location | None = None
    ) -> None:
        self.preset = preset
        self.field = field
        self.event_ref = event_ref
        self.detail = message
        self.location = location
        where = f" ({event_ref})" if event_ref else ""
        super().__init__(f"{preset}: {field}: {message}{where}")

    def located(self) -> str:
        """The message prefixed with ``file:line:col`` of the failing preset node, when known."""
        return f"{self.location}: {self}" if self.location else str(self)


class RequestSchemaError(RenderError):
    """The rendered body does not pass the destination's request schema."""


class LeafRenderError(RelayError):
    """A template leaf failed while rendering; ``pointer`` says which. The renderer
    turns it into a RenderError naming the preset and the event."""

    def __init__(self, pointer: str, cause: Exception) -> None:
        self.pointer = pointer
        self.cause = cause
        super().__init__(getattr(cause, "message", None) or str(cause) or type(cause).__name__)

    def __reduce__(self) -> tuple[type[LeafRenderError], tuple[str, Exception]]:
        return LeafRenderError, (self.pointer, self.cause)


class LimitError(RelayError, ValueError):
    """A template went past one of the sandbox's named limits (see ``relay.expr.limits``).

    The message starts with ``template limit:`` and names the limit. It is a
    ValueError too, as Python's own integer-size limit is, so every place that
    turns a failing template into a RenderError (or, at load time, into a located
    PresetError) handles it without a special case.
    """


class GoldenError(RelayError):
    """A golden case file that is malformed or cannot be rendered."""


class GoldenMismatch(GoldenError):
    """A golden case whose render differs from its expectation; the message is the diff."""


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
        stop: bool = False,
    ) -> None:
        self.status = status
        self.retryable = retryable
        self.hint = hint
        self.attempts = attempts
        #: The answer means the destination cannot take anything (wrong key, missing list).
        self.stop = stop
        self.detail = message
        text = f"HTTP {status}: {message}" if status is not None else message
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)


class TransportError(RelayError):
    """No HTTP answer: ``kind`` is ``timeout`` or ``connection_error``; ``detail`` never holds a URL."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


class RecordError(RelayError):
    """An outcome could not be recorded (the journal or the dead letter failed): the run stops.

    Nothing is marked done that was not recorded, so the same command resumes safely.
    """


class Interrupted(RelayError):
    """The run was asked to stop (Ctrl-C, SIGTERM) before this event finished; it is not recorded,
    so running the same command again delivers it."""
