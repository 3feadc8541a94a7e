"""Compile the common subset of Jinja expressions straight to Python closures.

``compile_expression`` in Jinja builds a new template context on every call,
which costs more than the expression itself. This module turns an expression's
AST into nested closures that do exactly what Jinja's generated code does for
the same nodes, through the same sandboxed environment: attribute and item
access go through ``ENVIRONMENT.getattr`` / ``getitem`` (the sandbox checks),
calls through ``ENVIRONMENT.call``, operators through ``call_binop``, ``~`` through
``concat_values`` and output through ``finalize`` and ``concat`` (the template
limits), and filters and tests are the environment's own.
Anything outside the subset raises ``Unsupported`` and the caller keeps Jinja's
own compiled expression (the plain path). ``test_fast_path.py`` renders every
golden through both paths and requires identical results.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.nodes import EvalContext
from jinja2.utils import _PassArg

from ..errors import TemplateError
from .sandbox import BoundedSandbox

__all__ = ["Unsupported", "compile_node", "compile_output"]

Fast = Callable[[Mapping[str, Any]], Any]

_DICT_ATTRIBUTES = frozenset(dir(dict))
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "gt": operator.gt,
    "lteq": operator.le,
    "gteq": operator.ge,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


class Unsupported(TemplateError):
    """The node is outside the compiled subset: use Jinja's own compilation."""


class _Compiler:
    def __init__(self, env: BoundedSandbox) -> None:
        self.env = env
        # Filters, tests and calls that want a context only use it to reach the environment
        # (select, map, ...): one shared, empty context serves them all.
        self.context = env.context_class(env, {}, None, {})
        self.eval_context = EvalContext(env)

    def compile(self, node: nodes.Node) -> Fast:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise Unsupported(type(node).__name__)
        return method(node)  # type: ignore[no-any-return]

    def _Const(self, node: nodes.Const) -> Fast:
        value = node.value
        return lambda _c: value

    def _Name(self, node: nodes.Name) -> Fast:
        if node.ctx != "load":
            raise Unsupported("store")
        name, undefined = node.name, self.env.undefined

        def load(c: Mapping[str, Any]) -> Any:
            try:
                return c[name]
            except KeyError:
                return undefined(name=name)

        return load

    def _Getattr(self, node: nodes.Getattr) -> Fast:
        target, attr, env = self.compile(node.node), node.attr, self.env

        if attr in _DICT_ATTRIBUTES:  # Jinja tries the attribute first: let the sandbox decide
            return lambda c: env.getattr(target(c), attr)

        def get(c: Mapping[str, Any]) -> Any:
            obj = target(c)
            if type(obj) is dict:
                try:
                    return obj[attr]
                except KeyError:
                    return env.undefined(obj=obj, name=attr)
            return env.getattr(obj, attr)

        return get

    def _Getitem(self, node: nodes.Getitem) -> Fast:
        if isinstance(node.arg, nodes.Slice):
            raise Unsupported("slice")
        target, key, env = self.compile(node.node), self.compile(node.arg), self.env
        return lambda c: env.getitem(target(c), key(c))

    def _Compare(self, node: nodes.Compare) -> Fast:
        first = self.compile(node.expr)
        steps = [(_COMPARE[op.op], self.compile(op.expr)) for op in node.ops]

        def compare(c: Mapping[str, Any]) -> Any:
            left = first(c)
            for test, right_of in steps:
                right = right_of(c)
                if not test(left, right):
                    return False
                left = right
            return True

        return compare

    def _And(self, node: nodes.And) -> Fast:
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda c: left(c) and right(c)

    def _Or(self, node: nodes.Or) -> Fast:
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda c: left(c) or right(c)

    def _Not(self, node: nodes.Not) -> Fast:
        inner = self.compile(node.node)
        return lambda c: not inner(c)

    def _Neg(self, node: nodes.Neg) -> Fast:
        inner = self.compile(node.node)
        return lambda c: -inner(c)

    def _CondExpr(self, node: nodes.CondExpr) -> Fast:
        if node.expr2 is None:
            raise Unsupported("if without else")
        test, yes, no = self.compile(node.test), self.compile(node.expr1), self.compile(node.expr2)
        return lambda c: yes(c) if test(c) else no(c)

    def _List(self, node: nodes.List) -> Fast:
        items = [self.compile(item) for item in node.items]
        return lambda c: [item(c) for item in items]

    def _Tuple(self, node: nodes.Tuple) -> Fast:
        if node.ctx != "load":
            raise Unsupported("store")
        items = [self.compile(item) for item in node.items]
        return lambda c: tuple(item(c) for item in items)

    def _Dict(self, node: nodes.Dict) -> Fast:
        pairs = [(self.compile(p.key), self.compile(p.value)) for p in node.items]
        return lambda c: {key(c): value(c) for key, value in pairs}

    def _Concat(self, node: nodes.Concat) -> Fast:
        parts, concat = [self.compile(part) for part in node.nodes], self.env.concat_values
        return lambda c: concat([part(c) for part in parts])

    def _binary(self, node: nodes.BinExpr) -> Fast:
        # Every operator goes through the sandbox's call_binop, as in Jinja's own code.
        symbol, left, right, binop, context = (
            node.operator,
            self.compile(node.left),
            self.compile(node.right),
            self.env.call_binop,
            self.context,
        )
        return lambda c: binop(context, symbol, left(c), right(c))

    _Add = _Sub = _Mul = _Div = _FloorDiv = _Mod = _Pow = _binary

    def _arguments(self, node: nodes.Filter | nodes.Test | nodes.Call) -> tuple[list[Fast], list[tuple[str, Fast]]]:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("dynamic arguments")
        return [self.compile(a) for a in node.args], [(str(k.key), self.compile(k.value)) for k in node.kwargs]

    def _leading(self, func: Any) -> list[Any]:
        pass_arg = _PassArg.from_obj(func)
        if pass_arg is _PassArg.context:
            return [self.context]
        if pass_arg is _PassArg.eval_context:
            return [self.eval_context]
        if pass_arg is _PassArg.environment:
            return [self.env]
        return []

    def _Filter(self, node: nodes.Filter) -> Fast:
        if node.node is None or node.name not in self.env.filters:
            raise Unsupported("filter block or unknown filter")
        func = self.env.filters[node.name]
        lead, value = self._leading(func), self.compile(node.node)
        args, kwargs = self._arguments(node)
        return lambda c: func(*lead, value(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs})

    def _Test(self, node: nodes.Test) -> Fast:
        if node.name not in self.env.tests:
            raise Unsupported("unknown test")
        func: Any = self.env.tests[node.name]
        lead, value = self._leading(func), self.compile(node.node)
        args, kwargs = self._arguments(node)
        return lambda c: func(*lead, value(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs})

    def _Call(self, node: nodes.Call) -> Fast:
        target, env, context = self.compile(node.node), self.env, self.context
        args, kwargs = self._arguments(node)
        # env.call applies the sandbox's is_safe_callable / modifies_known_mutable checks.
        return lambda c: env.call(context, target(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs})


def compile_node(env: BoundedSandbox, node: nodes.Node) -> Fast:
    return _Compiler(env).compile(node)


def compile_output(env: BoundedSandbox, template: nodes.Template) -> Fast:
    """A template that is only text and ``{{ expressions }}``: concatenated like Jinja's str output."""
    if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
        raise Unsupported("statements")
    compiler = _Compiler(env)
    parts: list[Fast] = []
    for piece in template.body[0].nodes:
        if isinstance(piece, nodes.TemplateData):
            parts.append(_text(piece.data))
        else:
            parts.append(_as_text(compiler.compile(piece), env, compiler.context))
    concat = env.concat
    return lambda c: concat([part(c) for part in parts])


def _text(text: str) -> Fast:
    return lambda _c: text


def _as_text(inner: Fast, env: BoundedSandbox, context: Any) -> Fast:
    finalize: Any = env.finalize  # as Jinja's code does: str(environment.finalize(context, value))

    def as_text(c: Mapping[str, Any]) -> str:
        value = inner(c)
        # A string is as it was made (within the limits); ``concat`` counts the total.
        return value if type(value) is str else str(finalize(context, value))

    return as_text
