"""The template limits, and the checks the sandbox runs before doing any work.

Presets are untrusted (``relay validate`` runs on pull requests), so a template
must not be able to make relay allocate gigabytes or loop for hours. Every way a
template makes a value goes through the sandbox (``sandbox.py``): operators,
``~``, filters, method calls, ``str.format``, output and loops. The sandbox asks
the functions here first, and they *estimate* the size of the result from the
operands, so ``'a' * 1000000000`` fails before anything is allocated.

Sizes are counted as text: a string by its length, a list or mapping by the text
it would print as (every item counted each time it is referenced, so a list that
holds the same long string a thousand times is as big as its printout).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from ..errors import LimitError

__all__ = [
    "BINOPS",
    "MAX_DIGITS",
    "MAX_ITERATIONS",
    "MAX_TEXT",
    "LimitError",
    "binop",
    "check_call",
    "check_format_spec",
    "check_number",
    "check_text",
    "check_value",
    "concat_text",
    "join_text",
    "loop_limit",
    "text_limit",
    "text_size",
]

#: Characters in any value a template builds or renders (a list counts as its printout).
MAX_TEXT = 1_000_000
#: Digits in an integer a template computes: Python's own int <-> str conversion limit.
MAX_DIGITS = 4_300
#: Loop iterations in one rendering of one template, all ``{% for %}`` loops together.
MAX_ITERATIONS = 100_000

_MAX_BITS = math.ceil(MAX_DIGITS * math.log2(10))
#: Size counted for a value that prints short (a number, a boolean, an opaque object).
_SMALL = 24


def text_limit(size: int | None = None) -> LimitError:
    would = f" (this one would be {size:,} or more)" if size is not None else ""
    return LimitError(f"template limit: a value may be at most {MAX_TEXT:,} characters{would}")


def _number_limit() -> LimitError:
    return LimitError(f"template limit: a number may have at most {MAX_DIGITS:,} digits")


def loop_limit() -> LimitError:
    return LimitError(f"template limit: loops may run at most {MAX_ITERATIONS:,} times in one rendering")


def text_size(value: Any, limit: int = MAX_TEXT) -> int:
    """About ``len(str(value))``, without building that text; stops counting once past ``limit``."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value)
    if kind is dict or kind is list or kind is tuple:
        return _container_size(value, limit)
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _container_size(value, limit)
    return _scalar_size(value)


def _container_size(value: Any, limit: int) -> int:
    # Recursive, with the common types tested inline: this runs on template-built values at
    # render time, so it is written for speed (the depth is that of JSON data or of literals).
    size = 2
    if isinstance(value, Mapping):
        for key, member in value.items():
            size += (len(key) if type(key) is str else text_size(key)) + 6
            kind = type(member)
            if kind is str:
                size += len(member)
            elif kind is dict or kind is list or kind is tuple:
                size += _container_size(member, limit - size)
            elif kind is bool or member is None or kind is float:
                size += _SMALL
            else:
                size += text_size(member, limit - size)
            if size > limit:
                break
        return size
    for member in value:
        kind = type(member)
        if kind is str:
            size += len(member) + 4
        elif kind is dict or kind is list or kind is tuple:
            size += _container_size(member, limit - size) + 2
        elif kind is bool or member is None or kind is float:
            size += _SMALL
        else:
            size += text_size(member, limit - size) + 2
        if size > limit:
            break
    return size


def _scalar_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() * 3 // 10 + 2  # decimal digits, rounded up, and a sign
    return _SMALL


def check_text(value: Any) -> None:
    """Refuse a value whose text would be longer than MAX_TEXT (a string costs one len())."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_TEXT:
            raise text_limit(len(value))
    elif kind not in _SHORT and (size := text_size(value)) > MAX_TEXT:
        raise text_limit(size)


#: Types whose text is short whatever the value (an int is bounded by MAX_DIGITS).
_SHORT = frozenset({int, float, bool, type(None)})


def check_value(value: Any) -> Any:
    """A rendered value, returned as is when it is within MAX_TEXT."""
    check_text(value)
    return value


def check_number(value: Any) -> None:
    if type(value) is int and value.bit_length() > _MAX_BITS:
        raise _number_limit()


def _bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def _repeat(sequence: Any, times: int) -> None:
    if times > 0 and (unit := text_size(sequence, MAX_TEXT // times + 1)) * times > MAX_TEXT:
        raise text_limit(unit * times)


def _mul(left: Any, right: Any) -> Any:
    # int * int needs no check beforehand: the product of two bounded numbers is small to
    # build, and ``binop`` checks every result.
    if isinstance(right, int) and isinstance(left, (str, bytes, list, tuple)):
        _repeat(left, right)
    elif isinstance(left, int) and isinstance(right, (str, bytes, list, tuple)):
        _repeat(right, left)
    return left * right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
        size = text_size(left) + text_size(right)
        if size > MAX_TEXT:
            raise text_limit(size)
    return left + right


def _pow(base: Any, exponent: Any) -> Any:
    # |base| ** exponent has more than (bits(base) - 1) * exponent bits: refuse before computing.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and (_bits(abs(base)) - 1) * exponent >= _MAX_BITS
    ):
        raise _number_limit()
    return base**exponent


#: One printf conversion: its width and its precision ('*' takes them from the arguments).
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, (str, bytes)):
        text = left.decode("latin-1") if isinstance(left, bytes) else left
        size = len(text) + text_size(right)
        for width, precision in _PRINTF.findall(text):
            for number in (width, precision):
                if number == "*":  # the width is an argument: count every integer argument as one
                    arguments = right if isinstance(right, tuple) else (right,)
                    size += sum(abs(a) for a in arguments if type(a) is int)
                elif number:
                    size += _count(number)
        if size > MAX_TEXT:
            raise text_limit(size)
    return left % right


def _mul_checked(left: Any, right: Any) -> Any:
    if (left.__class__ is float and right.__class__ in _NUMBERS) or (
        right.__class__ is float and left.__class__ in _NUMBERS
    ):
        return cast(Any, left) * right  # a float: no repetition, no digits to count
    result = _mul(left, right)
    check_number(result)  # int * int: the product may have twice the digits
    return result


_NUMBERS = frozenset({int, float})

#: Each binary operator, with its check: the sandbox's ``call_binop`` (both paths) uses these.
BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,  # numbers grow by a digit at most
    "-": lambda a, b: a - b,
    "*": _mul_checked,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": _mod,
    "**": _pow,
}


def binop(operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right``, refused beforehand when the result would break a limit."""
    return BINOPS[operator](left, right)


def concat_text(pieces: Iterable[str]) -> str:
    """A template's output pieces (already text, each within MAX_TEXT), joined within MAX_TEXT."""
    items = pieces if isinstance(pieces, list) else list(pieces)
    size = sum(map(len, items))
    if size > MAX_TEXT:
        raise text_limit(size)
    return "".join(items)


def join_text(parts: Iterable[Any], separator: str = "") -> str:
    """``separator.join(str(p) for p in parts)`` (``~``, ``join``), counted before it is built."""
    items = parts if type(parts) is list else list(parts)
    for item in items:
        if item.__class__ is not str:
            break
    else:  # all text already: joining makes nothing the parts did not hold (checked after)
        text = separator.join(items)
        if len(text) > MAX_TEXT:
            raise text_limit(len(text))
        return text
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        size += len(item) if type(item) is str else text_size(item, MAX_TEXT)
    if size > MAX_TEXT:
        raise text_limit(size)
    return separator.join([item if type(item) is str else str(item) for item in items])


_WIDTH = re.compile(r"\d+")


def check_format_spec(spec: str) -> None:
    """A ``str.format`` field's spec: its width and precision count towards the value's size."""
    if spec and (size := sum(_count(n) for n in _WIDTH.findall(spec))) > MAX_TEXT:
        raise text_limit(size)


def _count(digits: str) -> int:
    """A width written in a format, read without converting a thousand-digit number."""
    return int(digits) if len(digits) <= 15 else 10**15


#: str and bytes methods whose first argument is the width of the result.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def check_call(function: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a method call that would build too big a value; returns the arguments to call with
    (an iterable that ``join`` is given is listed once, so that counting does not consume it)."""
    owner: Any = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    if isinstance(owner, (str, bytes)):
        if name in _WIDTH_METHODS and args and isinstance(args[0], int) and args[0] > MAX_TEXT:
            raise text_limit(args[0])
        if name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            if isinstance(tab, int) and len(owner) + tabs * tab > MAX_TEXT:
                raise text_limit(len(owner) + tabs * tab)
        if name == "join" and args:
            items = list(args[0])
            size = len(owner) * max(len(items) - 1, 0) + sum(text_size(i) for i in items)
            if size > MAX_TEXT:
                raise text_limit(size)
            return (items, *args[1:])
        if name == "replace" and len(args) >= 2:
            _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        if name == "translate" and args and isinstance(args[0], Mapping):
            longest = max((text_size(v) for v in args[0].values()), default=0)
            if longest * len(owner) > MAX_TEXT:
                raise text_limit(longest * len(owner))
    elif isinstance(owner, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        if isinstance(length, int) and length > MAX_TEXT:
            raise text_limit(length)
    return args


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if not isinstance(text, (str, bytes)) or type(old) is not type(text) or type(new) is not type(text):
        return
    found = (len(text) + 1 if not old else text.count(old)) if len(new) > len(old) else 0  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    size = len(text) + found * (len(new) - len(old))
    if size > MAX_TEXT:
        raise text_limit(size)
