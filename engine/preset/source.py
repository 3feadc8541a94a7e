"""Load YAML safely while remembering where every node came from.

ruamel's round-trip loader is the only one that keeps line and column for each
key and value, so we load with it once, walk the tree to build a map from JSON
pointer to location, and hand the rest of the engine plain JSON types. Round-trip
mode builds no arbitrary Python objects, so it is as safe as ``typ="safe"``.
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
from ruamel.yaml.error import MarkedYAMLError

from ..errors import Location, PresetError
from ..jsonpointer import escape_pointer

__all__ = ["SourceDoc", "escape_pointer", "load_yaml", "load_yaml_text", "to_plain"]


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


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def load_yaml_text(text: str, file: str) -> SourceDoc:
    """Parse ``text``; a syntax error becomes a located PresetError."""
    try:
        raw = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise PresetError(f"YAML syntax error: {problem}", location=Location(file, line, col)) from None
    except Exception as exc:  # ruamel raises several unrelated types for bad input
        raise PresetError(f"YAML error: {exc}", location=Location(file, 1, 1)) from None
    doc = SourceDoc(file=file, data=None)
    doc.data = _walk(raw, "", doc)
    return doc


def load_yaml(path: Path | str) -> SourceDoc:
    """Load a YAML file, from the parse cache when this exact text was parsed before.

    ruamel's round-trip parser is pure Python and costs ~40 ms for a preset; the
    cache (keyed by a hash of the text) makes a cold ``relay validate`` of many
    unchanged presets fast. ``RELAY_NO_CACHE=1`` turns it off.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PresetError(f"cannot read file: {exc.strerror}", location=Location(str(path), 1, 1)) from None
    cache = _cache_file(text)
    if cache is not None:
        cached = _read_cache(cache, str(path))
        if cached is not None:
            return cached
    doc = load_yaml_text(text, str(path))
    if cache is not None:
        _write_cache(cache, doc)
    return doc


_CACHE_FORMAT = "1"


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


def _walk(node: Any, pointer: str, doc: SourceDoc) -> Any:
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag not in _PLAIN_TAGS:
        # Presets are untrusted: explicit tags (``!!python/...``, ``!custom``) are refused, not interpreted.
        raise PresetError(f"YAML tag {tag!r} is not allowed", pointer=pointer or "/", location=doc.locate(pointer))
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            child = f"{pointer}/{escape_pointer(key)}"
            (k_line, k_col), (v_line, v_col) = _key_value_position(node, key)
            doc.keys[child] = Location(doc.file, k_line + 1, k_col + 1)
            doc.values[child] = Location(doc.file, v_line + 1, v_col + 1)
            out[str(key)] = _walk(node[key], child, doc)
        if pointer not in doc.values:
            doc.values[pointer] = Location(doc.file, node.lc.line + 1, node.lc.col + 1)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            child = f"{pointer}/{index}"
            line, col = node.lc.item(index)
            doc.values[child] = Location(doc.file, line + 1, col + 1)
            items.append(_walk(item, child, doc))
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
