"""The filters and tests relay adds to Jinja, as plain functions.

Each one is safe for untrusted input: none touches the file system, the network
or the clock, and none evaluates its argument as a template.
"""

from __future__ import annotations

import base64
import hashlib
import hmac as _hmac
import json
import math
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

__all__ = ["CUSTOM_FILTERS", "is_valid_email", "to_json"]


def to_json(value: Any) -> str:
    """Compact JSON, unicode kept as is (unlike Jinja's HTML-safe ``tojson``)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _to_number(value: Any) -> int | float | None:
    """A number, or a numeric string as a number. Anything else is an error, not 0."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError("a boolean is not a number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            raise ValueError("value is not a number") from None
        if not math.isfinite(number):
            raise ValueError("value is not a finite number")
        return number
    raise ValueError(f"a {type(value).__name__} is not a number")


def is_valid_email(value: Any) -> bool:
    """True for a syntactically valid address (no DNS lookup), via email-validator."""
    if not isinstance(value, str) or not value:
        return False
    return _email_verdict(value)


@lru_cache(maxsize=65536)
def _email_verdict(address: str) -> bool:
    # Cached: a stream names the same contacts again and again, and validation is
    # the single most expensive step of a render (~30 us). Imported here: it costs
    # 15 ms at start-up, which `relay validate` should not pay.
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _normalize_email(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _path_segment(value: Any) -> str:
    # RFC 3986 lets '@' and ':' stand in a path segment; vendors' own docs show raw '@' in list paths.
    return quote(str(value), safe="@:!$&'()*+,;=-._~")


def _b64encode(value: Any) -> str:
    data = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(data).decode("ascii")


def _sha256(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _hmac_sha256(value: Any, key: Any) -> str:
    return _hmac.new(str(key).encode(), str(value).encode(), hashlib.sha256).hexdigest()


def _merge(base: Any, override: Any) -> dict[str, Any]:
    """``base`` with ``override``'s keys laid over it (one level); null counts as empty."""
    return {**(base or {}), **(override or {})}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (Mapping, list)) and not value)


def _compact(value: Any) -> Any:
    """Drop null and empty ({} or []) members of a mapping or list, one level deep."""
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if not _is_empty(v)}
    if isinstance(value, list):
        return [v for v in value if not _is_empty(v)]
    return value


CUSTOM_FILTERS: dict[str, Callable[..., Any]] = {
    "to_json": to_json,
    "to_number": _to_number,
    "normalize_email": _normalize_email,
    "path_segment": _path_segment,
    "b64encode": _b64encode,
    "sha256": _sha256,
    "hmac_sha256": _hmac_sha256,
    "compact": _compact,
    "merge": _merge,
}
