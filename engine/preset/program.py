"""A preset compiled to Python: one module per preset, written and compiled once, at load time.

The module holds:

- ``decide``: the event's mapping chosen first, then the rules, the mapping's fields and the
  order key, with every selector, rule and template leaf written out inline (a selector is
  read where something first needs it, so a dropped event reads no more than its drop needs);
- one function per request (the preset's steps, and each check's request and fix): its
  ``when``, URL, method, body, encoding, headers and auth, returning the ``Request``;
- ``fixed``: every value that depends on settings and constants only, computed once per run
  (URL prefixes, credentials, the auth header) and handed to the functions above;
- a function for every other template of the preset (delivery hints, checks...), which the
  compiled model calls.

Each line that evaluates a preset node carries its origin (pointer, file:line): ``relay
compile`` prints them, and an error raised in generated code is located by the line it
stopped at (``emit.origin_of``), at no cost while nothing fails. Errors keep their type; the
runtime (``decide``/``build``) turns them into RenderErrors at that pointer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TemplateError
from ..expr import helpers
from ..expr.emit import Module, Origin, Writer, origin_of
from .locate import display_path
from .source import SourceDoc

__all__ = ["FIXED", "Hoister", "Program", "compile_module", "once_per_run", "where_in"]

#: The names whose values are fixed for a run: parts reading only these are computed once.
FIXED = frozenset({"settings", "constants"})


class Hoister:
    """Collects the parts of templates that are fixed for a run (``FIXED`` names only), each
    computed once in the module's ``fixed`` function; deduplicated by their code."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.entries: list[tuple[str, bool, Origin | None]] = []
        self._slots: dict[str, int] = {}
        self._references: set[str] = set()
        self.origin: Origin | None = None
        self._failed = module.name(helpers.Failed, "Failed")

    def __call__(self, code: str, fallible: bool) -> str:
        if code in self._references:  # already one of ours
            return code
        slot = self._slots.get(code)
        if slot is None:
            slot = self._slots[code] = len(self.entries)
            self.entries.append((code, fallible, self.origin))
        if not self.entries[slot][1]:
            reference = f"S[{slot}]"
        else:
            temp = f"_f{slot}"
            reference = f"({temp} if ({temp} := S[{slot}]).__class__ is not {self._failed} else {temp}.throw())"
        self._references.add(reference)
        return reference

    def write(self) -> None:
        """``fixed(n_settings, n_constants)``: the values, in order (a later one may use an earlier)."""
        writer = Writer(self.module)
        writer.line("S = []")
        for code, fallible, origin in self.entries:
            if not fallible:
                writer.line(f"S.append({code})", origin)
                continue
            writer.line("try:")
            with writer.block():
                writer.line(f"S.append({code})", origin)
            writer.line("except Exception as error:")
            with writer.block():
                writer.line(f"S.append({self._failed}(error))")
        writer.line("return tuple(S)")
        self.module.add("def fixed(n_settings, n_constants):", writer, Origin("/settings"))


@dataclass
class Program:
    """The compiled module of one preset, and its entry points."""

    module: Module
    decide: Callable[..., Any]
    fixed_values: Callable[[Any, Any], tuple[Any, ...]]
    #: A request's function by its pointer (``/requests/0``, ``/checks/1/request``...).
    steps: dict[str, Callable[..., Any]] = field(default_factory=dict)
    _memo: tuple[Any, tuple[Any, ...]] = (None, ())
    _event_steps: tuple[tuple[Any, Callable[..., Any]], ...] | None = None

    def event_steps(self, preset: Any) -> tuple[tuple[Any, Callable[..., Any]], ...]:
        """An event's steps in order, each with its function (a step sent only batched left out)."""
        found = self._event_steps
        if found is None:
            steps = [step for step in preset.steps if step.batch is None or not step.batch.only]
            found = self._event_steps = tuple((step, self.steps[step.pointer]) for step in steps)
        return found

    def fixed(self, settings: Mapping[str, Any], constants: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values fixed for a run, for these settings (worked out once per settings object)."""
        owner, values = self._memo
        if owner is not settings:
            values = self.fixed_values(settings, constants)
            self._memo = (settings, values)  # one assignment: safe across worker threads
        return values

    def source(self) -> str:
        """The generated Python, each evaluating line headed by the preset node it comes from."""
        return self.module.source(comments=True)

    def origin(self, error: BaseException) -> Origin | None:
        """The preset node whose generated line raised ``error``."""
        return origin_of(self.module, error.__traceback__)


def once_per_run(function: Callable[..., Any]) -> Callable[..., Any]:
    """A request function whose request reads only settings and constants (a lookup of a
    list's fields, say), made once per run: once per ``fixed`` values (``Program.fixed``), each
    caller getting headers of its own. What fails is not kept: it fails again, where it did."""
    kept: list[Any] = [(None, None)]

    def made_once(c: Any, answers: Any, now: float, fixed: tuple[Any, ...]) -> Any:
        owner, parts = kept[0]
        if owner is not fixed:
            parts = function(c, answers, now, fixed)
            kept[0] = (fixed, parts)  # one assignment: safe across worker threads
        if parts is None:
            return None
        method, url, headers, *rest = parts
        return (method, url, dict(headers), *rest)

    return made_once


def where_in(doc: SourceDoc) -> Callable[[str], str]:
    """``file:line`` of a pointer in the preset, for the comments of generated code."""

    shown: dict[str, Path] = {}  # display_path resolves the file: once per file, not per line

    def where(pointer: str) -> str:
        try:
            location = doc.locate(pointer)
        except Exception:  # a pointer generated code makes up (none should be): no comment
            return ""
        if location.file not in shown:
            shown[location.file] = display_path(Path(location.file))
        return f"{shown[location.file]}:{location.line}"

    return where


#: Compiled modules by the hash of their source: a preset loaded again compiles nothing.
_CODE: dict[str, Any] = {}
_MAX_CODE = 256


def compile_module(module: Module, title: str) -> dict[str, Any]:
    text = module.source()
    key = hashlib.sha256(text.encode()).hexdigest()
    cached = _CODE.get(key)
    if cached is not None:
        module.filename, module.code = cached.co_filename, cached
        module.origins = _origins(module)
        exec(cached, module.namespace)
        return module.namespace
    try:
        namespace = module.compile()
    except (SyntaxError, RecursionError, MemoryError) as exc:  # should not happen: templates are bounded
        raise TemplateError(f"relay could not compile this preset's templates ({type(exc).__name__})") from exc
    if len(_CODE) >= _MAX_CODE:
        _CODE.clear()
    _CODE[key] = module.code
    return namespace


def _origins(module: Module) -> dict[int, Origin]:
    return {number: origin for number, (_text, origin) in enumerate(module._numbered(), 1) if origin is not None}
