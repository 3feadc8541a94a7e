"""Writing generated Python: lines with their origins, the names they use, one compile.

A ``Module`` is one piece of generated source (a preset's program, or a standalone
template). Each line may carry an *origin*: the JSON pointer of the preset node it
evaluates and that node's ``file:line``. The origins serve twice: ``relay compile``
prints them as comments, and when generated code raises, the line the traceback stops
at names the template leaf that failed, at no cost while nothing fails.
"""

from __future__ import annotations

import itertools
import keyword
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import CodeType, TracebackType
from typing import Any

__all__ = ["Module", "Origin", "Shared", "Writer", "literal", "origin_of"]

#: Every module gets a file name of its own, so a traceback tells which module a frame is in.
_SERIAL = itertools.count(1)


@dataclass(frozen=True)
class Origin:
    """Where generated code comes from: a preset node (its pointer) and, when known, file:line."""

    pointer: str
    where: str = ""


def literal(value: Any) -> str | None:
    """Python source that evaluates to ``value`` (a new object each time), or None when
    ``value`` is not plain data (str, numbers, booleans, null, and lists, tuples and dicts
    of them)."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int:
        return repr(value)
    if kind is float:
        return repr(value) if not math.isnan(value) and value not in (float("inf"), float("-inf")) else None
    if kind is list or kind is tuple:
        items = [literal(item) for item in value]
        if any(item is None for item in items):
            return None
        inner = ", ".join(items)  # type: ignore[arg-type]
        return f"[{inner}]" if kind is list else f"({inner}{',' if len(items) == 1 else ''})"
    if kind is dict:
        pairs = [(literal(k), literal(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    return None


class Writer:
    """The body of one generated function: indented lines, each with its origin."""

    def __init__(self, module: Module, indent: int = 1) -> None:
        self.module = module
        self.indent = indent
        self.lines: list[tuple[int, str, Origin | None]] = []
        self.origin: Origin | None = None
        self._locals = itertools.count(1)

    def line(self, text: str, origin: Origin | None = None) -> None:
        self.lines.append((self.indent, text, origin or self.origin))

    def local(self, hint: str = "v") -> str:
        """A local variable name of this function, unused so far."""
        return f"_{hint}{next(self._locals)}"

    def block(self) -> _Indented:
        return _Indented(self)


class Shared:
    """Common subexpressions of one generated function: a part written more than once (the
    same code, reading the same names) is computed where it is first needed, then reused.

    While the function is written, each candidate part stands as a placeholder
    (``share(code)``); ``resolve`` then writes a part used once as it is, and a part used
    more than once as a lazily filled local (never before the first place that needs it, so
    a part behind a false condition is still not computed, and what fails, fails where it
    did). Only for parts that read names bound once for the whole function.
    """

    _MARK = re.compile("\x00(\\d+)\x00")

    def __init__(self, module: Module) -> None:
        self.module = module
        self.codes: dict[str, int] = {}

    def __call__(self, code: str) -> str:
        return f"\x00{self.codes.setdefault(code, len(self.codes))}\x00"

    def resolve(self, writer: Writer) -> None:
        """Replace the placeholders in ``writer``'s lines; the shared locals start unset."""
        codes = list(self.codes)
        uses = [0] * len(codes)  # the places each part is written once the shared ones are reused
        for _indent, text, _origin in writer.lines:
            for number in self._MARK.findall(text):
                uses[int(number)] += 1
        for number in range(len(codes) - 1, -1, -1):  # a part is numbered after the parts inside it
            for inner in self._MARK.findall(codes[number]):
                uses[int(inner)] += 1 if uses[number] > 1 else uses[number]
        unset = self.module.name(UNSET, "UNSET")
        written: dict[int, str] = {}

        def code_of(number: int) -> str:
            found = written.get(number)
            if found is None:
                inner = self._MARK.sub(lambda match: code_of(int(match.group(1))), codes[number])
                local = f"_k{number}"
                found = inner if uses[number] <= 1 else f"({local} if {local} is not {unset} else ({local} := {inner}))"
                written[number] = found
            return found

        lines = [
            (indent, self._MARK.sub(lambda m: code_of(int(m.group(1))), text), origin)
            for indent, text, origin in writer.lines
        ]
        shared = [f"_k{number}" for number in range(len(codes)) if uses[number] > 1]
        start = [(writer.indent, f"{' = '.join(shared)} = {unset}", None)] if shared else []
        writer.lines = start + lines


#: What a shared local holds before its part is computed.
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()


class _Indented:
    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def __enter__(self) -> None:
        self.writer.indent += 1

    def __exit__(self, *_: object) -> None:
        self.writer.indent -= 1


class Module:
    """Generated source and the objects it refers to by name (its globals)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.filename = f"<relay {next(_SERIAL)}: {title}>"
        self.namespace: dict[str, Any] = {"__name__": f"relay.generated.{title}", "__builtins__": __builtins__}
        self._interned: dict[tuple[str, int], str] = {}
        self.chunks: list[tuple[str, list[tuple[int, str, Origin | None]]]] = []
        self.origins: dict[int, Origin] = {}
        self.code: CodeType | None = None
        #: Objects made for this module once (a helper bound to it, say).
        self.extras: dict[str, Any] = {}

    def name(self, value: Any, hint: str) -> str:
        """A global name for ``value`` (a helper, a filter, a constant): one name per object."""
        key = (hint, id(value))
        found = self._interned.get(key)
        if found is not None and self.namespace.get(found) is value:
            return found
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in hint) or "k"
        if base[0].isdigit() or keyword.iskeyword(base):
            base = "_" + base
        chosen, count = base, 1
        while chosen in self.namespace:
            chosen, count = f"{base}_{count}", count + 1
        self.namespace[chosen] = value
        self._interned[key] = chosen
        return chosen

    def fresh(self, hint: str) -> str:
        """A global name no other object has: for a function the module defines."""
        return self.name(object(), hint)

    def add(self, header: str, writer: Writer, origin: Origin | None = None) -> None:
        """Append a function (``header`` is its ``def`` line) whose body ``writer`` holds."""
        self.chunks.append((header, [(0, header, origin), *writer.lines]))

    def source(self, *, comments: bool = False) -> str:
        """The module's text. With ``comments`` (for people: line numbers then differ), each
        run of lines that evaluates one preset node is headed by a comment naming it."""
        out: list[str] = []
        shown: Origin | None = None
        for text, origin in self._numbered():
            if comments and text and not text[0].isspace():
                out.append("")
                shown = None
            if comments and origin is not None and origin != shown:
                pad = " " * (len(text) - len(text.lstrip()))
                out.append(f"{pad}# {origin.pointer}{'  (' + origin.where + ')' if origin.where else ''}")
            shown = origin if origin is not None else shown
            out.append(text)
        return "\n".join(out).lstrip("\n") + "\n"

    def _numbered(self) -> Iterator[tuple[str, Origin | None]]:
        for _header, lines in self.chunks:
            for indent, text, origin in lines:
                yield "    " * indent + text, origin

    def compile(self) -> dict[str, Any]:
        """Compile the module once; its functions are then in the returned namespace."""
        self.origins = {}
        for number, (_text, origin) in enumerate(self._numbered(), 1):
            if origin is not None:
                self.origins[number] = origin
        self.code = compile(self.source(), self.filename, "exec")
        exec(self.code, self.namespace)
        return self.namespace


def origin_of(module: Module, traceback: TracebackType | None) -> Origin | None:
    """The origin of the innermost line of ``module`` that ``traceback`` passes through."""
    found: Origin | None = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == module.filename:
            found = module.origins.get(traceback.tb_lineno, found)
        traceback = traceback.tb_next
    return found
