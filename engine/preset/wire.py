"""How a request's parts are written on the wire: JSON text, form fields, and the refusal of
a rendered request relay will not send. Generated request code and ``runtime.build`` share these."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

from ..errors import LeafRenderError

__all__ = ["Refusal", "encode_form", "encode_json", "form_quote", "form_value"]

#: JSON as relay sends it: compact, UTF-8 text as it is.
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Refusal(LeafRenderError):
    """A rendered request relay will not send (not an absolute URL, a header it cannot carry...)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(pointer, ValueError(message))
        self.message = message

    def __reduce__(self) -> tuple[type[Refusal], tuple[str, str]]:  # type: ignore[override]
        return Refusal, (self.pointer, self.message)


def form_value(value: Any) -> str:
    """How one form field is written: booleans as true/false, objects as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return encode_json(value)
    return str(value)


_SAFE_FORM = re.compile(r"[A-Za-z0-9_.~-]*")


#: Each UTF-8 byte as ``quote_plus`` writes it (a space as ``+``), for ``str.translate``.
_FORM_BYTES = {
    byte: chr(byte)
    if chr(byte).isascii() and _SAFE_FORM.fullmatch(chr(byte))
    else "+"
    if byte == 0x20
    else f"%{byte:02X}"
    for byte in range(256)
}


def form_quote(text: str) -> str:
    """``quote_plus(text)``, the same characters, without its Python loop over each byte
    (``tests/test_steps.py`` holds the two to the same output)."""
    return text.encode("utf-8").decode("latin-1").translate(_FORM_BYTES)


@lru_cache(maxsize=1024)
def _form_name(name: str) -> str:
    return quote_plus(name)


def encode_form(body: Any, pointer: str) -> tuple[dict[str, str], str]:
    """A form body's fields as text, and its encoded text (as ``urlencode`` writes it: ASCII)."""
    if not isinstance(body, dict):
        raise Refusal(pointer, "a form body must be a mapping of field names to values")
    decoded: dict[str, str] = {}
    parts = []
    for key, value in body.items():
        name, text = str(key), form_value(value)
        decoded[name] = text
        parts.append(_form_name(name) + "=" + (text if _SAFE_FORM.fullmatch(text) else form_quote(text)))
    return decoded, "&".join(parts)
