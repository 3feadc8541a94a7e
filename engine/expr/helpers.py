"""What generated code calls: the sandbox's hooks, bound once, and the few steps that are
not worth writing out inline.

Generated code (``codegen.py``) inlines the common cases itself (a key of a dict, a string
that is already text) and calls these for everything else, so every value still goes
through the sandbox's checks and the template limits: attribute and item access
(``getattr``/``getitem``: the sandbox's safety check and the null rule), calls (``call``:
``limits.check_call``, ``is_safe_callable``, the bounded ``str.format``), operators
(``limits.BINOPS``), ``~`` (``limits.join_text``), output (``text``: ``finalize``) and
loops (``loop_limit``). The names here are what ``relay compile`` shows.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2.exceptions import TemplateRuntimeError, UndefinedError
from jinja2.runtime import LoopContext, Undefined

from ..errors import LeafRenderError
from . import limits
from .sandbox import ENVIRONMENT

__all__ = [
    "CONTAINERS",
    "CONTEXT",
    "EVAL_CONTEXT",
    "Failed",
    "LoopContext",
    "Undefined",
    "call",
    "check_text",
    "concat",
    "getattr_",
    "getitem",
    "join_text",
    "loop_limit",
    "namespace_only",
    "strict",
    "text",
    "undefined",
]

#: Filters, tests and calls that take a context use it only to reach the environment
#: (``select``, ``map``...): one shared, empty context serves every rendering.
CONTEXT = ENVIRONMENT.context_class(ENVIRONMENT, {}, None, {})
EVAL_CONTEXT = CONTEXT.eval_ctx
CONTAINERS = frozenset({list, dict, tuple})

getattr_ = ENVIRONMENT.getattr
getitem = ENVIRONMENT.getitem
check_text = limits.check_text
concat = limits.concat_text
join_text = limits.join_text
loop_limit = limits.loop_limit
_call = ENVIRONMENT.call
_finalize: Any = ENVIRONMENT.finalize


def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """A call in a template: the sandbox's ``call`` (unsafe callables refused, calls that would
    build too big a value refused, ``str.format`` bounded)."""
    return _call(CONTEXT, function, *args, **kwargs)


def text(value: Any) -> str:
    """A value printed into a template's text, as Jinja prints it (``str(finalize(value))``)."""
    return str(_finalize(CONTEXT, value))


def undefined(name: str) -> Undefined:
    """A name read before anything gave it a value (``{{ x }}{% set x = 1 %}``)."""
    return ENVIRONMENT.undefined(name=name)


def strict(value: Any) -> Any:
    """A whole expression's value: an undefined value fails here, with Jinja's message."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


def namespace_only(_obj: Any, _attribute: str, _value: Any) -> None:
    """``{% set x.y = ... %}``: Jinja allows it on a namespace only, and presets have none."""
    raise TemplateRuntimeError("cannot assign attribute on non-namespace object")


def counted(items: Iterable[Any], budget: list[int]) -> Iterator[Any]:
    """A loop's items, each taken from the rendering's one loop budget."""
    for item in items:
        budget[0] -= 1
        if budget[0] < 0:
            raise loop_limit()
        yield item


class Failed:
    """A value computed once per run (from settings only) that failed: it raises again,
    where it is used, for every event that uses it, as it would have if computed there."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error.with_traceback(None)

    def throw(self) -> Any:
        # A copy: one object raised by many events (and threads) would share its traceback.
        try:
            error = copy.copy(self.error)
        except Exception:  # an exception type that cannot be copied: raise the one we have
            error = self.error
        raise error


def located(error: Exception, pointer: str) -> LeafRenderError:
    """``error`` raised by the template leaf at ``pointer`` (kept as it is if already located)."""
    if isinstance(error, LeafRenderError):
        return error
    return LeafRenderError(pointer, error)


__all__ += ["UndefinedError", "counted", "located"]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged over ``base``, recursively; keys keep base-first order."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        merged[key] = deep_merge(below, value) if isinstance(value, Mapping) and isinstance(below, Mapping) else value
    return merged


__all__ += ["deep_merge"]


def strict_lookup(lookup: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``lookup`` (the sandbox's getattr or getitem) for a whole expression's value: an
    undefined result fails at once."""
    return _STRICT.setdefault(lookup, lambda obj, key: strict(lookup(obj, key)))


_STRICT: dict[Any, Callable[[Any, Any], Any]] = {}


def bounded_get(mapping: dict[Any, Any], *args: Any) -> Any:
    """``dict.get`` as the sandbox's ``call`` runs it: a string it returns is within the limits."""
    value = mapping.get(*args)
    if value.__class__ is str and len(value) > limits.MAX_TEXT:
        raise limits.text_limit(len(value))
    return value


__all__ += ["bounded_get", "strict_lookup"]
