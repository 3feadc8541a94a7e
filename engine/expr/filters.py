"""The filters and tests relay adds to Jinja, as plain functions.

Each one is safe for untrusted input: none touches the file system, the network
or the clock, and none evaluates its argument as a template.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac as _hmac
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache, wraps
from typing import Any
from urllib.parse import quote

from jinja2 import Undefined

__all__ = ["CUSTOM_FILTERS", "NULL_AWARE", "is_valid_email", "reads_as_null", "to_json"]


def to_json(value: Any) -> str:
    """Compact JSON, unicode kept as is (unlike Jinja's HTML-safe ``tojson``)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _from_json(value: Any) -> Any:
    """JSON text parsed (a vendor answer that nests a JSON document as text); null for text that
    is not JSON, so an odd answer reads as nothing rather than failing; other values as they are."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


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


def _sha256(value: Any) -> str | None:
    """Hex SHA-256 of the value's text (UTF-8). Hashes what it is given: normalise first.

    Null stays null: hashing the text "None" would send a plausible-looking hash of nothing."""
    return None if value is None else hashlib.sha256(str(value).encode()).hexdigest()


def _md5(value: Any) -> str | None:
    """Hex MD5 of the value's text (UTF-8), e.g. a member id: ``email | lower | md5``. Null stays null."""
    return None if value is None else hashlib.md5(str(value).encode(), usedforsecurity=False).hexdigest()


def _slug(value: Any, sep: str = "_", length: int | None = None) -> str | None:
    """An identifier-safe name: accents folded to ASCII, lower case, every run of other
    characters one ``sep``, none at either end; cut to ``length`` characters.
    ``"Order Completed!"`` -> ``order_completed``. For APIs whose names allow only letters,
    digits, ``_`` and ``-``."""
    if value is None:
        return None
    folded = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii").lower()
    out = re.sub(r"[^a-z0-9]+", sep, folded).strip(sep) if sep else re.sub(r"[^a-z0-9]+", "", folded)
    if length is not None:
        out = out[: max(int(length), 0)].rstrip(sep) if sep else out[: max(int(length), 0)]
    return out


def _digits(value: Any) -> str | None:
    """Only the digits of a value: ``+1 (555) 010-0199`` -> ``15550100199`` (phone numbers for hashing)."""
    if value is None:
        return None
    return "".join(ch for ch in str(value) if ch.isascii() and ch.isdigit())


def _string_values(value: Any) -> Any:
    """A mapping with every value as text (JSON for lists and objects); nulls left out.

    For APIs whose event properties take strings only."""
    if not isinstance(value, Mapping):
        raise ValueError(f"string_values needs a mapping, not a {type(value).__name__}")
    return {str(k): (v if isinstance(v, str) else to_json(v) if isinstance(v, (dict, list)) else
                     ("true" if v else "false") if isinstance(v, bool) else str(v))
            for k, v in value.items() if v is not None}  # fmt: skip


def _instant(value: Any, tz: str | None) -> datetime.datetime:
    """An aware datetime from ISO-8601 text or a unix timestamp (seconds, or milliseconds
    when it is too large to be seconds). Text without an offset is in ``tz`` (default UTC)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if abs(value) >= 1e11 else float(value)
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            return _instant(float(text), tz)
        try:
            parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("not an ISO-8601 time or a unix timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_zone(tz) if tz else datetime.UTC)
        return parsed
    raise ValueError(f"a {type(value).__name__} is not a time")


@lru_cache(maxsize=64)
def _zone(name: str) -> datetime.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _unix_seconds(value: Any, tz: str | None = None) -> int | None:
    """Unix time in whole seconds from ISO-8601 text or a timestamp (``tz``: the zone of naive text)."""
    return None if value is None else math.floor(_instant(value, tz).timestamp())


def _unix_millis(value: Any, tz: str | None = None) -> int | None:
    """Unix time in whole milliseconds, as ``unix_seconds``."""
    return None if value is None else math.floor(_instant(value, tz).timestamp() * 1000)


def _iso8601(value: Any, tz: str | None = None) -> str | None:
    """ISO-8601 text: in UTC with ``Z`` by default, or in zone ``tz`` with its offset.
    Milliseconds are kept when the time has them."""
    if value is None:
        return None
    instant = _instant(value, None)
    instant = instant.astimezone(_zone(tz) if tz else datetime.UTC)
    spec = "milliseconds" if instant.microsecond else "seconds"
    text = instant.isoformat(timespec=spec)
    return text.removesuffix("+00:00") + "Z" if not tz and text.endswith("+00:00") else text


def _hmac_sha256(value: Any, key: Any) -> str:
    return _hmac.digest(str(key).encode(), str(value).encode(), "sha256").hex()


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
    "from_json": _from_json,
    "to_number": _to_number,
    "normalize_email": _normalize_email,
    "path_segment": _path_segment,
    "b64encode": _b64encode,
    "sha256": _sha256,
    "md5": _md5,
    "slug": _slug,
    "digits": _digits,
    "string_values": _string_values,
    "unix_seconds": _unix_seconds,
    "unix_millis": _unix_millis,
    "iso8601": _iso8601,
    "hmac_sha256": _hmac_sha256,
    "compact": _compact,
    "merge": _merge,
}


# -- null: what a key that is not there reads as -------------------------------------


def reads_as_null(obj: Any, key: Any) -> bool:
    """True where reading ``key`` of ``obj`` finds nothing and gives null rather than an
    error: a key a mapping does not have, an index past either end of a list, any key of null.
    (Event data has holes; a template reads them as null, as a selector path does.)"""
    if obj is None or isinstance(obj, Mapping):
        return True
    return isinstance(obj, (list, tuple)) and type(key) is int


def _absent(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


def _null_default(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
        return default_value if _absent(value) or (boolean and not value) else value

    return default


def _null_defined(_original: Callable[..., Any]) -> Callable[..., Any]:
    def defined(value: Any) -> bool:
        """True for a value that is there: not null (a missing key reads as null)."""
        return not _absent(value)

    return defined


def _null_undefined(_original: Callable[..., Any]) -> Callable[..., Any]:
    def undefined(value: Any) -> bool:
        return _absent(value)

    return undefined


def _null_map(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def map_(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if args or "default" not in kwargs or "attribute" not in kwargs:
            return original(context, value, *args, **kwargs)
        fallback = kwargs.pop("default")
        return (fallback if item is None else item for item in original(context, value, *args, **kwargs))

    return map_


#: Jinja's filters and tests that ask "is there a value?", made to count null as none
#: (Jinja's own count only an undefined name). Each wraps the environment's original.
NULL_AWARE: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "default": _null_default,
    "d": _null_default,
    "defined": _null_defined,
    "undefined": _null_undefined,
    "map": _null_map,
}
