"""The one sandboxed Jinja environment every template in every preset compiles in.

``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: attribute access is
checked, mutating methods are refused, and a missing name is an error rather
than an empty string. The filter list is closed, and there are no globals.

It is also where the template limits (``limits.py``) are enforced, for every way a
template is evaluated (a preset's compiled Python, ``codegen.py``, calls the same hooks, and
so does Jinja's own rendering, which the compliance corpus holds it to):

- every binary operator goes through ``call_binop`` (all of them are intercepted,
  which also stops Jinja from evaluating constant expressions while compiling);
- every call goes through ``call``, and ``str.format`` through a bounded formatter;
- ``~`` goes through ``concat_values``, output through ``finalize`` and ``concat``;
- every ``{% for %}`` iterates through ``iterate``, which counts;
- the filters that can make a value bigger than their input are wrapped.

Jinja's optimizer is off and ``finalize`` takes the context, so nothing in a
template is evaluated while it compiles: the only compile-time evaluation is
``templates.check_constants``, which goes through these same hooks.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import update_wrapper, wraps
from typing import Any

import jinja2.filters
from jinja2 import StrictUndefined, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import make_attrgetter
from jinja2.nodes import Concat, For, Node
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

from . import limits
from .filters import CUSTOM_FILTERS, NULL_AWARE, is_valid_email, reads_as_null

__all__ = ["BUILTIN_FILTERS", "ENVIRONMENT", "BoundedSandbox", "reads_as_null"]

#: Jinja's own filters that presets may use. A closed list: anything not named
#: here (or in filters.CUSTOM_FILTERS) is an unknown filter at load time.
BUILTIN_FILTERS = (
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "first",
    "float",
    "int",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "round",
    "select",
    "selectattr",
    "sort",
    "string",
    "sum",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
)

#: Filters that turn their input into text (``str()`` of a list prints all of it): what is
#: not a string is measured first. Their output is measured too, unless it has a fixed size
#: (a digest) or is never longer than the input.
_TEXT_FILTERS = frozenset(
    {
        "capitalize",
        "lower",
        "string",
        "title",
        "trim",
        "upper",
        "urlencode",
        "b64encode",
        "path_segment",
        "to_json",
        "string_values",
    }
)
_DIGEST_FILTERS = frozenset({"digits", "hmac_sha256", "md5", "sha256"})


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` and ``{% for %}`` routed through the sandbox."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()

    def visit_For(self, node: For, frame: Frame) -> None:
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit(self, node: Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) in self._loop_iterables:
            self.write("environment.iterate(context, ")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.concat_values((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with each field's width and the total length counted."""

    def __init__(self, env: BoundedSandbox) -> None:
        super().__init__(env)
        self._size = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        limits.check_text(value)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        limits.check_format_spec(format_spec)
        limits.check_text(value)
        text = super().format_field(value, format_spec)
        self._size += len(text)
        if self._size > limits.MAX_TEXT:
            raise limits.text_limit(self._size)
        return text


@pass_context
def _finalize(_context: Context, value: Any) -> Any:
    # Taking the context keeps Jinja from finalizing constant output at compile time.
    limits.check_text(value)
    return value


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every way of making a value bounded by ``limits``."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(limits.concat_text)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return limits.BINOPS[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = limits.check_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, (str, bytes)) and len(result) > limits.MAX_TEXT:
            raise limits.text_limit(len(result))
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute``: Jinja's sandboxed lookup (the attribute first, then the item),
        except that a key a mapping does not have, or any key of null, reads as null."""
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                pass
        else:
            return self._checked_attribute(obj, attribute, value)
        return None if reads_as_null(obj, attribute) else self.undefined(obj=obj, name=attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``obj[argument]``: Jinja's sandboxed lookup (the item first, then the attribute),
        except that a missing key, an index past the end of a list, or any key of null reads
        as null."""
        try:
            return obj[argument]
        except (TypeError, LookupError):
            if isinstance(argument, str):
                try:
                    value = getattr(obj, argument)
                except AttributeError:
                    pass
                else:
                    return self._checked_attribute(obj, argument, value)
        return None if reads_as_null(obj, argument) else self.undefined(obj=obj, name=argument)

    def _checked_attribute(self, obj: Any, attribute: str, value: Any) -> Any:
        bounded = self.wrap_str_format(value)
        if bounded is not None:
            return bounded
        if self.is_safe_attribute(obj, attribute, value):
            return value
        return self.unsafe_undefined(obj, attribute)

    def concat_values(self, parts: Iterable[Any]) -> str:
        """``a ~ b``: the text of each part, counted before it is joined."""
        return limits.join_text(parts)

    def iterate(self, context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
        """A ``{% for %}`` loop's items; all loops of one rendering share one budget."""
        budget: list[int] = context.__dict__.setdefault("_relay_loop_budget", [limits.MAX_ITERATIONS])
        for item in iterable:
            budget[0] -= 1
            if budget[0] < 0:
                raise limits.loop_limit()
            yield item

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        owner: Any = value.__self__
        if not isinstance(owner, str):
            return None
        format_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs = args[0]
                args = ()
            return type(owner)(_BoundedFormatter(self).vformat(owner, args, kwargs))

        return update_wrapper(bounded_format, value)


def _text_filter(original: Callable[..., Any], *, grows: bool = True) -> Callable[..., Any]:
    # A string argument is within the limits already (it was made or read within them);
    # anything else is measured before the filter prints it, and the result after, unless
    # the input is so small that no result could pass the limit (given no arguments, none of
    # these filters writes more than _GROWTH characters for each character of its input).
    @wraps(original)
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        size = len(value) if type(value) is str else limits.text_size(value)
        if size > limits.MAX_TEXT:
            raise limits.text_limit(size)
        if args or kwargs:
            size = limits.MAX_TEXT  # an argument may make the result any size: measured
            for argument in itertools.chain(args, kwargs.values()):
                if type(argument) is not str:
                    limits.check_text(argument)
        result = original(value, *args, **kwargs)
        if grows and size > _SMALL_INPUT and (type(result) is not str or len(result) > limits.MAX_TEXT):
            limits.check_text(result)
        return result

    return bounded


#: The most characters a text filter writes for one character of input: one outside the
#: Basic Multilingual Plane, escaped in JSON as two ``\\uXXXX``, or percent-encoded as 4 bytes.
_GROWTH = 12
#: An input this small (as text) cannot give a result past the limit (with room to spare).
_SMALL_INPUT = limits.MAX_TEXT // (2 * _GROWTH)


def _digest_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    return _text_filter(original, grows=False)


_JUST_TEXT = frozenset({str})


def _join_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
        limits.check_text(d)
        items = value if isinstance(value, (str, bytes, Mapping)) else list(value)
        if isinstance(items, list) and set(map(type, items)) <= _JUST_TEXT:  # the usual case, counted in C
            size = sum(map(len, items)) + len(str(d)) * len(items)
        else:
            size = limits.text_size(items) + len(str(d)) * len(items)
        if size > limits.MAX_TEXT:
            raise limits.text_limit(size)
        return original(eval_ctx, items, d, attribute)

    return join


def _replace_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
        for argument in (s, old, new):
            limits.check_text(argument)
        limits.check_call(str(s).replace, (str(old), str(new), -1 if count is None else count), {})
        return original(eval_ctx, s, old, new, count)

    return replace


def _sum_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def sum_(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        if not isinstance(start, (list, tuple)):
            result = original(environment, iterable, attribute, start)
            limits.check_number(result)
            return result
        # Python's sum() copies the list so far for every item: quadratic. Count, then chain.
        items = list(iterable if attribute is None else map(make_attrgetter(environment, attribute), iterable))
        size = limits.text_size(start) + sum(limits.text_size(item) for item in items)
        if size > limits.MAX_TEXT:
            raise limits.text_limit(size)
        if all(type(item) is type(start) for item in items):
            return type(start)(itertools.chain(start, *items))
        return original(environment, items, None, start)  # the same TypeError Jinja gives

    return sum_


_SPECIAL_FILTERS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "join": _join_filter,
    "replace": _replace_filter,
    "sum": _sum_filter,
}


def _sync(original: Callable[..., Any]) -> Callable[..., Any]:
    """Jinja's own sync function for a filter that also serves async templates (its
    ``async_variant`` wrapper asks on every call whether the template is async; this
    environment never is): the same work, without the dispatch."""
    sync = getattr(jinja2.filters, f"sync_{getattr(original, '__name__', '')}", None)
    return sync if callable(sync) else original


def _make_environment() -> BoundedSandbox:
    env = BoundedSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        optimized=False,
        finalize=_finalize,
    )
    available = {**{name: _sync(env.filters[name]) for name in BUILTIN_FILTERS}, **CUSTOM_FILTERS}
    env.filters = {}
    for name, original in available.items():
        bound = _SPECIAL_FILTERS.get(name) or (
            _text_filter if name in _TEXT_FILTERS else _digest_filter if name in _DIGEST_FILTERS else None
        )
        env.filters[name] = bound(original) if bound is not None else original
    for name, make in NULL_AWARE.items():  # null is "not there": default, defined and map agree
        target = env.tests if name in env.tests else env.filters
        target[name] = make(target[name])  # type: ignore[arg-type]
    env.tests["valid_email"] = is_valid_email
    env.globals.clear()  # no range/dict/lipsum/cycler: presets get data, not toys
    return env


ENVIRONMENT = _make_environment()
