"""``extends``: build one preset document from the presets and fragments a file builds on.

Each file is loaded and checked against the preset schema on its own, so its
errors point into it. Then the bases are merged in order and the file itself
last. Every node of the result remembers the file, line and column it came
from, so the compiler's errors about the merged preset still point at the line
the author wrote, in whichever file that was.

How sections merge:
- maps of named things (``settings``, ``selectors``): an entry replaces the base's
  entry of the same name, whole;
- trees (``metadata``, ``constants``, ``fields``, ``delivery``): key by key, all the
  way down; a ``null`` in ``fields`` or ``constants`` removes the key;
- ``rules``, ``mappings``, ``requests``, ``checks``: by ``name``. The same name changes
  the base's item key by key (its ``fields`` and ``body`` key by key all the way
  down); a new name is added at the end, or where ``before`` says;
- ``delivery.responses``: the file's entries come first (the first match wins);
- ``auth``: replaced whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import PresetError, PresetErrors
from ..jsonpointer import escape_pointer
from .schema import schema_errors
from .source import SourceDoc, load_yaml, load_yaml_text

__all__ = ["compose", "load_composed"]

_NAMED_LISTS = ("rules", "mappings", "requests", "checks")
_WHOLE_ENTRIES = ("settings", "selectors")
_DEEP_TREES = ("metadata", "constants", "fields", "delivery")
#: Inside a named item, these subtrees merge key by key rather than being replaced.
_ITEM_TREES = ("fields", "body", "headers", "batch")
_MAX_DEPTH = 16


def load_composed(path: Path, resolve: Callable[[str, Path], Path], text: str | None = None) -> SourceDoc:
    """``path`` with everything it extends merged in; PresetErrors lists every problem found.

    ``resolve(reference, from_file)`` turns an ``extends`` entry into a file path.
    ``text``, when given, is read as the file's content (an editor's unsaved text).
    """
    return _load(path, resolve, (), text)


def _load(
    path: Path, resolve: Callable[[str, Path], Path], chain: tuple[Path, ...], text: str | None = None
) -> SourceDoc:
    try:
        doc = load_yaml(path) if text is None else load_yaml_text(text, str(path))
    except PresetError as exc:
        raise PresetErrors([exc]) from None
    errors = schema_errors(doc)
    if errors:
        raise PresetErrors(errors)
    data = doc.data if isinstance(doc.data, dict) else {}
    references = data.get("extends")
    if references is None:
        return doc
    references = [references] if isinstance(references, str) else references
    bases = []
    problems = []
    for index, reference in enumerate(references):
        pointer = "/extends" if isinstance(data["extends"], str) else f"/extends/{index}"
        try:
            base_path = resolve(reference, path)
        except Exception as exc:  # an unknown preset name or a missing file
            problems.append(doc.error(pointer, f"cannot extend {reference!r}: {exc}"))
            continue
        resolved = base_path.resolve()
        if resolved in chain or resolved == path.resolve():
            problems.append(doc.error(pointer, f"{reference!r} extends this file again: a cycle"))
            continue
        if len(chain) >= _MAX_DEPTH:
            problems.append(doc.error(pointer, f"more than {_MAX_DEPTH} levels of extends"))
            continue
        bases.append(_load(base_path, resolve, (*chain, path.resolve())))
    if problems:
        raise PresetErrors(problems)
    merged = bases[0]
    for base in bases[1:]:
        merged = compose(merged, base)
    return compose(merged, doc)


class _Builder:
    """Collects the merged data and, for each pointer of it, where that node was written."""

    def __init__(self, file: str) -> None:
        self.out = SourceDoc(file=file, data=None)
        self.errors: list[PresetError] = []

    def copy(self, node: Any, src: SourceDoc, src_ptr: str, dst_ptr: str) -> Any:
        """``node`` (at ``src_ptr`` in ``src``) placed at ``dst_ptr``, with all its locations."""
        for table, target in ((src.values, self.out.values), (src.keys, self.out.keys)):
            for pointer, location in table.items():
                if pointer == src_ptr or pointer.startswith(src_ptr + "/"):
                    target[dst_ptr + pointer[len(src_ptr) :]] = location
        return node

    def here(self, src: SourceDoc, src_ptr: str, dst_ptr: str) -> None:
        """Only the node itself (not its children) was written at ``src_ptr``."""
        self.out.values[dst_ptr] = src.locate(src_ptr)
        if src_ptr in src.keys:
            self.out.keys[dst_ptr] = src.keys[src_ptr]


def compose(base: SourceDoc, over: SourceDoc) -> SourceDoc:
    """``over`` merged onto ``base`` (see the module docstring), with every location kept."""
    builder = _Builder(over.file)
    base_data = base.data if isinstance(base.data, dict) else {}
    over_data = {k: v for k, v in (over.data or {}).items() if k != "extends"}
    merged: dict[str, Any] = {}
    builder.out.values[""] = over.locate("")
    for section in [*base_data, *(k for k in over_data if k not in base_data)]:
        pointer = f"/{section}"
        if section not in over_data:
            merged[section] = builder.copy(base_data[section], base, pointer, pointer)
        elif section not in base_data:
            merged[section] = builder.copy(over_data[section], over, pointer, pointer)
        elif section in _NAMED_LISTS:
            merged[section] = _named(builder, base, over, section)
        elif section in _WHOLE_ENTRIES:
            merged[section] = _entries(builder, base, over, pointer)
        elif section in _DEEP_TREES:
            merged[section] = _deep(builder, base, over, pointer, pointer, pointer, section)
        else:  # auth, and anything whole
            merged[section] = builder.copy(over_data[section], over, pointer, pointer)
    if builder.errors:
        raise PresetErrors(builder.errors)
    builder.out.data = merged
    return builder.out


def _at(doc: SourceDoc, pointer: str) -> Any:
    node = doc.data
    for escaped in pointer.split("/")[1:]:
        token = escaped.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _entries(builder: _Builder, base: SourceDoc, over: SourceDoc, pointer: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base_map, over_map = _at(base, pointer), _at(over, pointer)
    builder.here(over, pointer, pointer)
    for name in [*base_map, *(k for k in over_map if k not in base_map)]:
        child = f"{pointer}/{escape_pointer(name)}"
        source, value = (over, over_map[name]) if name in over_map else (base, base_map[name])
        out[name] = builder.copy(value, source, child, child)
    return out


def _deep(
    builder: _Builder, base: SourceDoc, over: SourceDoc, base_ptr: str, over_ptr: str, out_ptr: str, section: str
) -> Any:
    base_node, over_node = _at(base, base_ptr), _at(over, over_ptr)
    if not (isinstance(base_node, dict) and isinstance(over_node, dict)):
        if section == "delivery" and out_ptr == "/delivery/responses" and isinstance(base_node, list):
            return _responses(builder, base, over)
        return builder.copy(over_node, over, over_ptr, out_ptr)
    builder.here(over, over_ptr, out_ptr)
    out: dict[str, Any] = {}
    removable = section in ("fields", "constants", "body", "headers")
    for name in [*base_node, *(k for k in over_node if k not in base_node)]:
        token = escape_pointer(name)
        if name not in over_node:
            out[name] = builder.copy(base_node[name], base, f"{base_ptr}/{token}", f"{out_ptr}/{token}")
        elif over_node[name] is None and removable:
            continue  # `key: null` in an extending file removes the key
        elif name not in base_node:
            out[name] = builder.copy(over_node[name], over, f"{over_ptr}/{token}", f"{out_ptr}/{token}")
        else:
            out[name] = _deep(
                builder, base, over, f"{base_ptr}/{token}", f"{over_ptr}/{token}", f"{out_ptr}/{token}", section
            )
    return out


def _responses(builder: _Builder, base: SourceDoc, over: SourceDoc) -> list[Any]:
    pointer = "/delivery/responses"
    mine, theirs = _at(over, pointer), _at(base, pointer)
    builder.here(over, pointer, pointer)
    out: list[Any] = []
    for source, items in ((over, mine), (base, theirs)):
        for index, item in enumerate(items):
            out.append(builder.copy(item, source, f"{pointer}/{index}", f"{pointer}/{len(out)}"))
    return out


def _named(builder: _Builder, base: SourceDoc, over: SourceDoc, section: str) -> list[Any]:
    """Merge two lists of named items; see the module docstring."""
    pointer = f"/{section}"
    base_items, over_items = _at(base, pointer), _at(over, pointer)
    builder.here(over, pointer, pointer)
    # Plan the order first: base items in place, new items at the end or before another.
    order: list[tuple[str, int, int | None]] = [("base", i, None) for i in range(len(base_items))]
    names = [item.get("name") for item in base_items]
    changes: dict[int, int] = {}
    for index, item in enumerate(over_items):
        name = item.get("name")
        if name in names and "before" not in item:
            changes[names.index(name)] = index
            continue
        target = item.get("before")
        if target is not None:
            if name in names:  # moved: taken out of its old place
                old = names.index(name)
                order = [slot for slot in order if not (slot[0] == "base" and slot[1] == old)]
                changes[old] = index
                slot: tuple[str, int, int | None] = ("base", old, index)
            else:
                slot = ("over", index, None)
            anchors = [i for i, s in enumerate(order) if _slot_name(s, base_items, over_items) == target]
            if not anchors:
                builder.errors.append(
                    over.error(f"{pointer}/{index}/before", f"no {section[:-1]} named {target!r} to go before")
                )
                continue
            order.insert(anchors[0], slot)
        else:
            order.append(("over", index, None))
    out: list[Any] = []
    for kind, index, _ in order:
        out_ptr = f"{pointer}/{len(out)}"
        if kind == "over":
            item = {k: v for k, v in over_items[index].items() if k != "before"}
            out.append(builder.copy(item, over, f"{pointer}/{index}", out_ptr))
        elif index in changes:
            out.append(_item(builder, base, over, f"{pointer}/{index}", f"{pointer}/{changes[index]}", out_ptr))
        else:
            out.append(builder.copy(base_items[index], base, f"{pointer}/{index}", out_ptr))
    return out


def _slot_name(slot: tuple[str, int, int | None], base_items: list[Any], over_items: list[Any]) -> Any:
    kind, index, _ = slot
    return (over_items if kind == "over" else base_items)[index].get("name")


def _item(builder: _Builder, base: SourceDoc, over: SourceDoc, base_ptr: str, over_ptr: str, out_ptr: str) -> Any:
    """A named item changed by an extending file: its keys replace the base's, trees merge."""
    base_item, over_item = _at(base, base_ptr), _at(over, over_ptr)
    builder.here(over, over_ptr, out_ptr)
    out: dict[str, Any] = {}
    for key in [*base_item, *(k for k in over_item if k not in base_item)]:
        if key == "before":
            continue
        token = escape_pointer(key)
        if key not in over_item:
            out[key] = builder.copy(base_item[key], base, f"{base_ptr}/{token}", f"{out_ptr}/{token}")
        elif key in base_item and key in _ITEM_TREES:
            out[key] = _deep(
                builder, base, over, f"{base_ptr}/{token}", f"{over_ptr}/{token}", f"{out_ptr}/{token}", key
            )
        else:
            out[key] = builder.copy(over_item[key], over, f"{over_ptr}/{token}", f"{out_ptr}/{token}")
    return out
