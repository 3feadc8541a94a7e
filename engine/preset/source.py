"""Load YAML safely while remembering where every node came from.

ruamel's round-trip loader is the only one that keeps line and column for each
key and value, so we load with it once, walk the tree to build a map from JSON
pointer to location, and hand the rest of the engine plain JSON types. Round-trip
mode builds no arbitrary Python objects, so it is as safe as ``typ="safe"``.

Every YAML file relay reads (presets, settings, golden cases, demo configs) is
untrusted, so reading one is bounded: its size, the values it holds as written
(which bounds the parser's time: ruamel's scanner is pure Python), how deep they
nest, how many aliases it uses and how many values it expands to once aliases are
followed (a "billion laughs" is a few hundred bytes). Each limit fails at once,
with the file, line and column where it was reached.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import __version__ as ruamel_version
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent

from ..errors import Location, PresetError
from ..jsonpointer import escape_pointer

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_YAML_ALIASES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_EXPANDED",
    "MAX_YAML_VALUES",
    "SourceDoc",
    "escape_pointer",
    "load_yaml",
    "load_yaml_text",
    "read_text",
    "to_plain",
]

#: Bytes in a preset, settings, golden or demo file (and in a request schema).
MAX_FILE_BYTES = 1_048_576
#: Values (mappings, lists and scalars) a YAML file holds as written.
MAX_YAML_VALUES = 20_000
#: Levels of nesting in a YAML file.
MAX_YAML_DEPTH = 64
#: Aliases (``*name``) a YAML file uses.
MAX_YAML_ALIASES = 100
#: Values a YAML file holds once every alias is replaced by what it points to.
MAX_YAML_EXPANDED = 100_000


@dataclass
class SourceDoc:
    """A loaded YAML document: plain data plus pointer -> location maps."""

    file: str
    data: Any
    values: dict[str, Location] = field(default_factory=dict)
    keys: dict[str, Location] = field(default_factory=dict)

    def locate(self, pointer: str, *, key: bool = False) -> Location:
        """The nearest known location for ``pointer``, walking up to parents."""
        table = self.keys if key else self.values
        probe = pointer
        while True:
            if probe in table:
                return table[probe]
            if key and probe in self.values:
                return self.values[probe]
            if not probe:
                return Location(self.file, 1, 1)
            probe = probe.rsplit("/", 1)[0]

    def error(self, pointer: str, message: str, *, key: bool = False, hint: str | None = None) -> PresetError:
        return PresetError(message, pointer=pointer, location=self.locate(pointer, key=key), hint=hint)


class _YamlLimit(Exception):
    """A YAML limit reached while composing; carries where (ruamel's 0-based mark)."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.mark = mark


class _BoundedComposer(Composer):
    """ruamel's composer, counting values, depth and aliases as it goes. The parser
    produces events on demand, so stopping here also stops the scanning."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        counts = self.__dict__.setdefault("_relay_counts", {"values": 0, "aliases": 0, "depth": 0})
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            counts["aliases"] += 1
            if counts["aliases"] > MAX_YAML_ALIASES:
                raise _YamlLimit(f"YAML limit: a file may use at most {MAX_YAML_ALIASES:,} aliases", event.start_mark)
            return super().compose_node(parent, index)
        counts["values"] += 1
        if counts["values"] > MAX_YAML_VALUES:
            raise _YamlLimit(f"YAML limit: a file may hold at most {MAX_YAML_VALUES:,} values", event.start_mark)
        counts["depth"] += 1
        if counts["depth"] > MAX_YAML_DEPTH:
            raise _YamlLimit(f"YAML limit: values may nest at most {MAX_YAML_DEPTH} deep", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            counts["depth"] -= 1


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Composer = _BoundedComposer
    return yaml


def load_yaml_text(text: str, file: str) -> SourceDoc:
    """Parse ``text``; a syntax error or a YAML limit becomes a located PresetError."""
    try:
        raw = _yaml().load(text)
    except _YamlLimit as exc:
        mark = exc.mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        raise PresetError(str(exc), location=where) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise PresetError(f"YAML syntax error: {problem}", location=Location(file, line, col)) from None
    except Exception as exc:  # ruamel raises several unrelated types for bad input
        raise PresetError(f"YAML error: {exc}", location=Location(file, 1, 1)) from None
    doc = SourceDoc(file=file, data=None)
    doc.data = _Walk(doc).walk(raw, "", 0)
    return doc


def read_text(path: Path | str) -> str:
    """A file relay reads as text (YAML, JSON), within MAX_FILE_BYTES and UTF-8, or a
    PresetError located at the file (or at the first byte that is not UTF-8)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PresetError(f"cannot read file: {exc.strerror}", location=Location(str(path), 1, 1)) from None
    if len(data) > MAX_FILE_BYTES:
        size = path.stat().st_size if path.is_file() else len(data)
        raise PresetError(
            f"file limit: a file may be at most {MAX_FILE_BYTES:,} bytes (this one is {size:,}+)",
            location=Location(str(path), 1, 1),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise PresetError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded",
            location=Location(str(path), line, col),
            hint="save the file as UTF-8",
        ) from None


def load_yaml(path: Path | str) -> SourceDoc:
    """Load a YAML file, from the parse cache when this exact text was parsed before.

    ruamel's round-trip parser is pure Python and costs ~40 ms for a preset; the
    cache (keyed by a hash of the text, the YAML limits and the cache format) makes
    a cold ``relay validate`` of many unchanged presets fast. Only a document that
    passed every limit is cached. ``RELAY_NO_CACHE=1`` turns it off.
    """
    path = Path(path)
    text = read_text(path)
    cache = _cache_file(text)
    if cache is not None:
        cached = _read_cache(cache, str(path))
        if cached is not None:
            return cached
    doc = load_yaml_text(text, str(path))
    if cache is not None:
        _write_cache(cache, doc)
    return doc


#: Part of every cache key: a new format or new limits never read an entry made under the old.
_CACHE_FORMAT = f"2:{MAX_YAML_VALUES}:{MAX_YAML_DEPTH}:{MAX_YAML_ALIASES}:{MAX_YAML_EXPANDED}"


def _cache_file(text: str) -> Path | None:
    if os.environ.get("RELAY_NO_CACHE"):
        return None
    root = os.environ.get("RELAY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "relay"
    )
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\0{ruamel_version}\0{text}".encode()).hexdigest()
    return Path(root) / "yaml" / f"{digest}.json"


def _read_cache(path: Path, file: str) -> SourceDoc | None:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        values = {p: Location(file, line, col) for p, (line, col) in stored["values"].items()}
        keys = {p: Location(file, line, col) for p, (line, col) in stored["keys"].items()}
        return SourceDoc(file=file, data=stored["data"], values=values, keys=keys)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, doc: SourceDoc) -> None:
    payload = {
        "data": doc.data,
        "values": {p: [loc.line, loc.col] for p, loc in doc.values.items()},
        "keys": {p: [loc.line, loc.col] for p, loc in doc.keys.items()},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out)
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):
        pass  # the cache is an optimisation: never a reason to fail


_PLAIN_TAGS = {None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str"}


class _Walk:
    """Plain data and locations from ruamel's tree, expanding aliases within MAX_YAML_EXPANDED."""

    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.values = 0
        self.seen: set[int] = set()
        #: Inside an alias's expansion: the pointer where the outermost alias stands in
        #: the text (locations inside the expansion are the anchor's, elsewhere).
        self.alias_at: str | None = None

    def limit(self, message: str, pointer: str, hint: str | None = None) -> PresetError:
        if self.alias_at is None:
            return PresetError(message, pointer=pointer or "/", location=self.doc.locate(pointer), hint=hint)
        # ruamel places an alias at its anchor; the value that holds the alias is where it is written.
        holder = self.alias_at.rsplit("/", 1)[0]
        return PresetError(message, pointer=self.alias_at, location=self.doc.locate(holder), hint=hint)

    def walk(self, node: Any, pointer: str, depth: int) -> Any:
        if isinstance(node, (CommentedMap, CommentedSeq)) and self.alias_at is None and id(node) in self.seen:
            self.alias_at = pointer
            try:
                return self.walk(node, pointer, depth)
            finally:
                self.alias_at = None
        self.seen.add(id(node))
        doc = self.doc
        tag = getattr(getattr(node, "tag", None), "value", None)
        if tag not in _PLAIN_TAGS:
            # Presets are untrusted: explicit tags (``!!python/...``, ``!custom``) are refused, not interpreted.
            raise PresetError(f"YAML tag {tag!r} is not allowed", pointer=pointer or "/", location=doc.locate(pointer))
        self.values += 1
        if self.values > MAX_YAML_EXPANDED:
            raise self.limit(
                f"YAML limit: a file may hold at most {MAX_YAML_EXPANDED:,} values once its aliases are expanded",
                pointer,
                hint="an alias repeats everything its anchor holds; nested aliases multiply",
            )
        if depth > MAX_YAML_DEPTH:  # aliases can nest deeper than the text does
            raise self.limit(f"YAML limit: values may nest at most {MAX_YAML_DEPTH} deep", pointer)
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {}
            for key in node:
                child = f"{pointer}/{escape_pointer(key)}"
                (k_line, k_col), (v_line, v_col) = _key_value_position(node, key)
                doc.keys[child] = Location(doc.file, k_line + 1, k_col + 1)
                doc.values[child] = Location(doc.file, v_line + 1, v_col + 1)
                out[str(key)] = self.walk(node[key], child, depth + 1)
            if pointer not in doc.values:
                doc.values[pointer] = Location(doc.file, node.lc.line + 1, node.lc.col + 1)
            return out
        if isinstance(node, CommentedSeq):
            items = []
            for index, item in enumerate(node):
                child = f"{pointer}/{index}"
                line, col = node.lc.item(index)
                doc.values[child] = Location(doc.file, line + 1, col + 1)
                items.append(self.walk(item, child, depth + 1))
            if pointer not in doc.values:
                doc.values[pointer] = Location(doc.file, node.lc.line + 1, node.lc.col + 1)
            return items
        return to_plain(node)


def _key_value_position(node: CommentedMap, key: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where ``key`` and its value are written. A key a YAML merge (``<<: *anchor``) brought
    in is written in the anchored mapping; it is located there."""
    # ruamel keeps the merged mappings in `merge`: plain mappings, or (position, mapping) pairs
    # in older releases.
    merged = [item[1] if isinstance(item, tuple) else item for item in getattr(node, "merge", ())]
    for mapping in (node, *merged):
        if isinstance(mapping, CommentedMap) and key in mapping.lc.data:
            return mapping.lc.key(key), mapping.lc.value(key)
    return (node.lc.line, node.lc.col), (node.lc.line, node.lc.col)


def to_plain(node: Any) -> Any:
    """Turn ruamel's scalar subclasses into plain JSON types.

    An anchored ``&a true`` loads as ScalarBoolean (an int), floats as ScalarFloat,
    dates as ``datetime.date``: none of those survive json or jsonschema as meant.
    """
    if node is None or type(node) in (str, int, float, bool):
        return node
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if type(node).__name__ == "ScalarBoolean":
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node
