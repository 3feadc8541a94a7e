"""Compile Jinja's syntax trees to Python source: the one way relay evaluates templates.

Jinja parses every template (``templates.parse``) and the sandbox stays the authority on
what a template may do. This module writes, for each node, the Python that Jinja's own
code generator would run for it in the sandbox (``jinja2.compiler``), with the sandbox's
hooks bound as globals (``helpers.py``), so a template costs what the same code written by
hand would cost:

- a key of a dict is read inline (``x.get('key')``); anything else goes through the
  sandbox's ``getattr``/``getitem`` (its safety check, and the null rule: a key that is
  not there reads as null);
- operators call ``limits.BINOPS``, ``~`` calls ``join_text``, calls go through the
  sandbox's ``call``, output through ``finalize``, loops through one budget per rendering,
  exactly as the sandbox routes Jinja's own code;
- filters and tests are the environment's own functions, called directly;
- a part that reads no name is evaluated once, while compiling (through the same code, so
  the same limits: a constant past a limit is a located error at load time), and written
  as a literal when it is plain data;
- a part that reads only names the caller marks as fixed for a run (settings, constants)
  is handed to the caller's ``hoist``, which computes it once per run.

A node this module does not compile is a TemplateError at load time, located: never a
silent fallback. ``tests/compliance/`` holds the compiled code to Jinja's own rendering.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Undefined
from jinja2.utils import _PassArg

from ..errors import LimitError, TemplateError
from . import helpers, limits
from .emit import Module, Writer, literal
from .sandbox import ENVIRONMENT
from .syntax import constant_dict, is_number, may_be_undefined, names_read, plain_filter

__all__ = ["Compiler", "Scope", "evaluate_constant"]

_DICT_ATTRIBUTES = frozenset(dir(dict))
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "lteq": "<=", "gteq": ">=", "in": "in", "notin": "not in"}
_BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "FloorDiv": "//", "Mod": "%", "Pow": "**"}
_UNARY = {"Not": "not ", "Neg": "-", "Pos": "+"}
_NO_ELSE = "evaluated to false and no else section was defined."
_ARITHMETIC = tuple(getattr(nodes, name) for name in _BINARY)
#: Nodes that are values as written: nothing to fold.
_INERT = (nodes.Const, nodes.TemplateData, nodes.Name, nodes.Slice, nodes.Keyword, nodes.Pair)
#: Nodes worth computing once when one function holds them twice (``Scope.share``).
_SHARED = (nodes.Filter, nodes.Call, nodes.Concat, *_ARITHMETIC)
#: A literal longer than this is computed at run time rather than written into the source.
_MAX_LITERAL = 200
_UNDEFINED_TYPES = frozenset({Undefined, type(ENVIRONMENT.undefined())})


@dataclass
class Scope:
    """The names a template may read, each bound to a Python expression (a local variable).

    ``dicts`` are names known to hold a dict. ``hoist`` takes the code of a part that reads
    only ``fixed`` names (and whether it can fail) and returns the expression that stands
    for it (computed once per run); without it, nothing is hoisted.
    """

    names: Mapping[str, str]
    dicts: frozenset[str] = frozenset()
    fixed: frozenset[str] = frozenset()
    hoist: Callable[[str, bool], str] | None = None
    #: Jinja names of the template's own (``{% set %}``, loop targets) and their Python names.
    own: dict[str, str] = field(default_factory=dict)
    #: Every name in ``names`` always holds a value (never undefined): no check is written.
    complete: bool = False
    #: Takes the code of a part that reads only ``names`` (bound once per function) and returns
    #: what stands for it: a part written twice in one function is computed once (``emit.Shared``).
    share: Callable[[str], str] | None = None


class Compiler:
    """Writes the Python for one template (or one expression) into ``writer``."""

    def __init__(self, module: Module, writer: Writer, scope: Scope, *, fold: bool = True) -> None:
        self.module = module
        self.writer = writer
        self.scope = scope
        self.fold = fold
        self.frame: dict[str, str] = {**scope.names, **scope.own}
        self.reads: dict[int, frozenset[str]] = {}
        self.statements = False

    def global_(self, value: Any, hint: str) -> str:
        return self.module.name(value, hint)

    # -- whole values ---------------------------------------------------------------

    def value(self, node: nodes.Expr, *, checked: bool = True) -> str:
        """The code of an expression's whole value: an undefined value fails, and a list or
        mapping the expression builds is measured (``checked``) against the limits."""
        names_read(node, self.reads)
        code = self.expr(node, 0, whole=True)
        known = isinstance(node, nodes.Name) and self.scope.complete and node.name in self.scope.names
        if may_be_undefined(node) and not known and not isinstance(node, (nodes.Getattr, nodes.Getitem)):
            temp = self.writer.local("u")
            kinds = self.global_(_UNDEFINED_TYPES, "UNDEFINED")
            strict = self.global_(helpers.strict, "strict")
            code = f"({temp} if ({temp} := {code}).__class__ not in {kinds} else {strict}({temp}))"
        if checked and isinstance(node, (nodes.List, nodes.Dict, nodes.Tuple)):
            code = f"{self.global_(limits.check_value, 'check_value')}({code})"
        elif checked and isinstance(node, (nodes.Filter, nodes.Call, *_ARITHMETIC)):
            temp = self.writer.local("c")
            containers = self.global_(helpers.CONTAINERS, "CONTAINERS")
            check = self.global_(limits.check_value, "check_value")
            code = f"({temp} if ({temp} := {code}).__class__ not in {containers} else {check}({temp}))"
        return code

    def text(self, template: nodes.Template) -> str:
        """The code of a template's text (output only; ``statements.TemplateCompiler`` does the rest)."""
        names_read(template, self.reads)
        parts = [part for output in template.body for part in output.nodes]  # type: ignore[attr-defined]
        return self._joined([self._text_part(part) for part in parts])

    def _joined(self, parts: list[str]) -> str:
        if not parts:
            return "''"
        if len(parts) == 1 and parts[0].startswith(("'", '"')):
            return parts[0]
        temp = self.writer.local("j")
        joined = parts[0] if len(parts) == 1 else f"''.join(({', '.join(parts)},))"
        check = self.global_(limits.check_value, "check_value")
        return f"({temp} if len({temp} := {joined}) <= {limits.MAX_TEXT} else {check}({temp}))"

    def _text_part(self, node: nodes.Node) -> str:
        if isinstance(node, nodes.TemplateData):
            return repr(node.data)
        code = self.expr(node, 0)
        if isinstance(node, nodes.Const) and type(node.value) is str:
            return code
        temp = self.writer.local("s")
        return f"({temp} if ({temp} := {code}).__class__ is str else {self.global_(helpers.text, 'text')}({temp}))"

    # -- expressions ----------------------------------------------------------------

    def expr(self, node: nodes.Node, depth: int, *, whole: bool = False) -> str:
        if not isinstance(node, _INERT):
            names = self.reads.get(id(node))
            if names is None:
                names = names_read(node, self.reads)
            if not names and self.fold:
                folded = self._fold(node)
                if folded is not None:
                    return folded
            elif names and self.scope.hoist is not None and not self.statements and names <= self.scope.fixed:
                return self.scope.hoist(self._compile(node, depth, whole=whole), self._fallible(node, whole))
            elif self.scope.share is not None and isinstance(node, _SHARED) and self._bound_once(names):
                return self.scope.share(self._compile(node, depth, whole=whole))
        return self._compile(node, depth, whole=whole)

    def _bound_once(self, names: frozenset[str]) -> bool:  # names a function binds once, at its start
        return (
            bool(names)
            and not self.statements
            and names <= self.scope.names.keys()
            and not names & self.scope.own.keys()
        )

    def _compile(self, node: nodes.Node, depth: int, *, whole: bool = False) -> str:
        if type(node).__name__ in _BINARY:
            return self._binary(node, depth)  # type: ignore[arg-type]
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise TemplateError(f"relay does not compile `{type(node).__name__}` here", line=node.lineno or 1)
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            return method(node, depth, whole)  # type: ignore[no-any-return]
        return method(node, depth)  # type: ignore[no-any-return]

    def _fallible(self, node: nodes.Node, whole: bool) -> bool:
        """Whether a part can fail when it is computed: anything but a key of a dict."""
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)) or not self._known_dict(node.node):
            return True
        key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        return not (type(key) is str and key not in _DICT_ATTRIBUTES)

    def _fold(self, node: nodes.Node) -> str | None:
        try:
            value = evaluate_constant(node)
            limits.check_text(value)
        except LimitError as exc:
            raise TemplateError(str(exc), line=node.lineno or 1) from None
        except TemplateError:
            raise
        except Exception:
            return None  # it fails when it runs (a branch that may never be taken): leave it to then
        code = literal(value)
        return code if code is not None and len(code) <= _MAX_LITERAL else None

    def _temp(self, depth: int) -> str:
        return f"_t{depth}"

    def _Const(self, node: nodes.Const, _depth: int) -> str:
        code = literal(node.value)
        return code if code is not None else self.global_(node.value, "const")

    def _Name(self, node: nodes.Name, _depth: int) -> str:
        if node.ctx != "load":
            raise TemplateError("a name cannot be assigned here", line=node.lineno or 1)
        found = self.frame.get(node.name)
        if found is not None:
            return found
        return f"{self.global_(helpers.undefined, 'undefined')}({node.name!r})"

    def _known_dict(self, node: nodes.Node) -> bool:
        return isinstance(node, nodes.Name) and node.name in self.scope.dicts and node.name in self.scope.names

    def _lookup(self, target: nodes.Node, key: str, depth: int, whole: bool, slow: Any, hint: str) -> str:
        base = self.expr(target, depth + 1)
        fallback = self.global_(helpers.strict_lookup(slow) if whole else slow, hint + ("_strict" if whole else ""))
        if self._known_dict(target):
            return f"{base}.get({key!r})"
        if base.isidentifier():
            return f"({base}.get({key!r}) if {base}.__class__ is dict else {fallback}({base}, {key!r}))"
        temp = self._temp(depth)
        return f"({temp}.get({key!r}) if ({temp} := {base}).__class__ is dict else {fallback}({temp}, {key!r}))"

    def _Getattr(self, node: nodes.Getattr, depth: int, whole: bool = False) -> str:
        if node.attr in _DICT_ATTRIBUTES:  # Jinja tries the attribute first: the sandbox decides
            slow = helpers.strict_lookup(helpers.getattr_) if whole else helpers.getattr_
            name = self.global_(slow, "getattr_strict" if whole else "getattr_")
            return f"{name}({self.expr(node.node, depth + 1)}, {node.attr!r})"
        return self._lookup(node.node, node.attr, depth, whole, helpers.getattr_, "getattr_")

    def _Getitem(self, node: nodes.Getitem, depth: int, whole: bool = False) -> str:
        if isinstance(node.arg, nodes.Slice):  # as in Jinja: slices bypass the environment
            return f"{self.expr(node.node, depth + 1)}[{self._Slice(node.arg, depth + 1)}]"
        key = node.arg
        if isinstance(key, nodes.Const) and type(key.value) is str and key.value not in _DICT_ATTRIBUTES:
            return self._lookup(node.node, key.value, depth, whole, helpers.getitem, "getitem")
        slow = helpers.strict_lookup(helpers.getitem) if whole else helpers.getitem
        name = self.global_(slow, "getitem_strict" if whole else "getitem")
        return f"{name}({self.expr(node.node, depth + 1)}, {self.expr(key, depth + 1)})"

    def _Slice(self, node: nodes.Slice, depth: int) -> str:
        parts = [self.expr(part, depth + 1) if part is not None else "" for part in (node.start, node.stop)]
        step = f":{self.expr(node.step, depth + 1)}" if node.step is not None else ""
        return f"{parts[0]}:{parts[1]}{step}"

    def _Compare(self, node: nodes.Compare, depth: int) -> str:
        pieces = [self.expr(node.expr, depth + 1)]
        for operand in node.ops:
            pieces.append(f"{_COMPARE[operand.op]} {self.expr(operand.expr, depth + 1)}")
        return "(" + " ".join(pieces) + ")"

    def _logic(self, node: nodes.And | nodes.Or, depth: int) -> str:  # and, or
        word = "and" if isinstance(node, nodes.And) else "or"
        return f"({self.expr(node.left, depth + 1)} {word} {self.expr(node.right, depth + 1)})"

    _And = _Or = _logic

    def _unary(self, node: nodes.UnaryExpr, depth: int) -> str:  # not, -, +
        return f"({_UNARY[type(node).__name__]}{self.expr(node.node, depth + 1)})"

    _Not = _Neg = _Pos = _unary

    def _CondExpr(self, node: nodes.CondExpr, depth: int) -> str:
        test, yes = self.expr(node.test, depth + 1), self.expr(node.expr1, depth + 1)
        if node.expr2 is not None:
            no = self.expr(node.expr2, depth + 1)
        else:  # Jinja's own message, on its (not strict) undefined
            no = self.global_(Undefined(f"the inline if-expression on line {node.lineno} {_NO_ELSE}"), "no_else")
        return f"({yes} if {test} else {no})"

    def _List(self, node: nodes.List, depth: int) -> str:
        return "[" + ", ".join(self.expr(item, depth + 1) for item in node.items) + "]"

    def _Tuple(self, node: nodes.Tuple, depth: int) -> str:
        if node.ctx != "load":
            raise TemplateError("a tuple cannot be assigned here", line=node.lineno or 1)
        items = [self.expr(item, depth + 1) for item in node.items]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def _Dict(self, node: nodes.Dict, depth: int) -> str:
        pairs = [f"{self.expr(p.key, depth + 1)}: {self.expr(p.value, depth + 1)}" for p in node.items]
        return "{" + ", ".join(pairs) + "}"

    def _Concat(self, node: nodes.Concat, depth: int) -> str:
        parts = ", ".join(self.expr(part, depth + 1) for part in node.nodes)
        return f"{self.global_(helpers.join_text, 'join_text')}([{parts}])"

    def _binary(self, node: nodes.BinExpr, depth: int) -> str:
        symbol = _BINARY[type(node).__name__]
        function = self.global_(limits.BINOPS[symbol], f"op_{type(node).__name__.lower()}")
        return f"{function}({self.expr(node.left, depth + 1)}, {self.expr(node.right, depth + 1)})"

    def _arguments(self, node: nodes.Filter | nodes.Test | nodes.Call, depth: int) -> list[str]:
        out = [self.expr(argument, depth + 1) for argument in node.args]
        keywords = [(str(k.key), self.expr(k.value, depth + 1)) for k in node.kwargs]
        if any(keyword.iskeyword(name) or not name.isidentifier() for name, _ in keywords):
            out.append("**{" + ", ".join(f"{name!r}: {value}" for name, value in keywords) + "}")
            keywords = []
        out += [f"{name}={value}" for name, value in keywords]
        if node.dyn_args is not None:
            out.append("*" + self.expr(node.dyn_args, depth + 1))
        if node.dyn_kwargs is not None:
            out.append("**" + self.expr(node.dyn_kwargs, depth + 1))
        return out

    def _leading(self, function: Any) -> list[str]:
        passed = {
            _PassArg.context: (helpers.CONTEXT, "CONTEXT"),
            _PassArg.eval_context: (helpers.EVAL_CONTEXT, "EVAL_CONTEXT"),
            _PassArg.environment: (ENVIRONMENT, "ENVIRONMENT"),
        }.get(_PassArg.from_obj(function))  # type: ignore[arg-type]
        return [] if passed is None else [self.global_(*passed)]

    def filter_call(self, node: nodes.Filter, value: str, depth: int) -> str:
        function = ENVIRONMENT.filters.get(node.name)
        if function is None:
            raise TemplateError(f"unknown filter '{node.name}'", line=node.lineno or 1)
        name = self.global_(function, f"filter_{node.name}")
        return f"{name}({', '.join([*self._leading(function), value, *self._arguments(node, depth)])})"

    def _Filter(self, node: nodes.Filter, depth: int) -> str:
        if node.node is None:
            raise TemplateError("a filter needs a value here", line=node.lineno or 1)
        if node.name == "string" and is_number(node.node) and plain_filter(node):  # short: no size to check
            return f"str({self.expr(node.node, depth + 1)})"
        return self.filter_call(node, self.expr(node.node, depth + 1), depth)

    def _Test(self, node: nodes.Test, depth: int) -> str:
        function = ENVIRONMENT.tests.get(node.name)
        if function is None:
            raise TemplateError(f"unknown test '{node.name}'", line=node.lineno or 1)
        value = self.expr(node.node, depth + 1)
        if node.name in _IDENTITY_TESTS and not node.args and not node.kwargs and function is _JINJA_TESTS[node.name]:
            # Jinja's none, true and false tests, as they are (a constant is tested now: Python
            # refuses ``is`` with a literal)
            if isinstance(node.node, nodes.Const):
                return repr(function(node.node.value))
            return f"({value} is {_IDENTITY_TESTS[node.name]})"
        name = self.global_(function, f"test_{node.name}")
        return f"{name}({', '.join([*self._leading(function), value, *self._arguments(node, depth)])})"

    def _Call(self, node: nodes.Call, depth: int) -> str:
        call = self.global_(helpers.call, "call")
        target = node.node
        plain = not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None and 1 <= len(node.args) <= 2
        if plain and isinstance(target, nodes.Getattr) and target.attr == "get":
            # ``mapping.get(key)`` on a dict: what the sandbox's call would do, without the detour
            # (a string it gives is within the limits, as the sandbox's call checks).
            args = [self.expr(argument, depth + 1) for argument in node.args]
            constant = constant_dict(target.node)
            if constant is not None:  # a mapping written in the template: made once
                return f"{self.global_(constant, 'mapping')}.get({', '.join(args)})"
            base, temp, got = self.expr(target.node, depth + 1), self._temp(depth), f"_g{depth}"
            slow = f"{call}({self.global_(helpers.getattr_, 'getattr_')}({temp}, 'get'), {', '.join(args)})"
            check = self.global_(limits.check_value, "check_value")
            small = f"({got} := {temp}.get({', '.join(args)})).__class__ is not str or len({got}) <= {limits.MAX_TEXT}"
            fast = f"({got} if {small} else {check}({got}))"
            return f"({fast} if ({temp} := {base}).__class__ is dict else {slow})"
        function = self.expr(target, depth + 1)
        return f"{call}({', '.join([function, *self._arguments(node, depth)])})"


_IDENTITY_TESTS = {"none": "None", "true": "True", "false": "False"}
_JINJA_TESTS: dict[str, Any] = {name: ENVIRONMENT.tests[name] for name in _IDENTITY_TESTS}


def evaluate_constant(node: nodes.Node) -> Any:
    """Evaluate an expression that reads no name, through the compiled code (no folding); the
    outcome is kept (parsed trees are cached by source: a node is asked about twice)."""
    known = _CONSTANTS.get(id(node))
    if known is None or known[0] is not node:
        try:
            known = (node, True, _evaluate(node))
        except Exception as exc:  # kept, and raised again for every caller
            known = (node, False, exc)
        if len(_CONSTANTS) >= _MAX_CONSTANTS:
            _CONSTANTS.clear()
        _CONSTANTS[id(node)] = known
    _node, ok, outcome = known
    if not ok:
        raise outcome.with_traceback(None)
    return outcome


_CONSTANTS: dict[int, tuple[nodes.Node, bool, Any]] = {}
_MAX_CONSTANTS = 4096


def _evaluate(node: nodes.Node) -> Any:
    module = Module("constant")
    writer = Writer(module)
    compiler = Compiler(module, writer, Scope({}), fold=False)
    code = compiler.expr(node, 0)
    writer.line(f"return {code}")
    module.add("def constant():", writer)
    return module.compile()["constant"]()
