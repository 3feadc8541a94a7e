"""The one sandboxed Jinja environment every template in every preset compiles in.

``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: attribute access is
checked, mutating methods are refused, and a missing name is an error rather
than an empty string. The filter list is closed, and there are no globals.
"""

from __future__ import annotations

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .filters import CUSTOM_FILTERS, is_valid_email

__all__ = ["BUILTIN_FILTERS", "ENVIRONMENT"]

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


def _make_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    builtin = env.filters
    env.filters = {name: builtin[name] for name in BUILTIN_FILTERS}
    env.filters.update(CUSTOM_FILTERS)
    env.tests["valid_email"] = is_valid_email
    env.globals.clear()  # no range/dict/lipsum/cycler: presets get data, not toys
    return env


ENVIRONMENT = _make_environment()
