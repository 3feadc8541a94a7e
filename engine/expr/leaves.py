"""Template leaves and trees, written as Python functions and compiled together.

A preset's templates are checked one by one while it loads (``templates.inspect_template``)
and become ``Leaf`` objects: callables whose code is written later, all of a preset's in
one module (``bind``), next to the preset's program. ``write_tree`` writes the statements
that render a YAML tree whose string leaves are templates; the program uses it too, with
its own names, so a leaf is the same code wherever it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

from ..errors import LeafRenderError
from ..jsonpointer import escape_pointer
from . import helpers
from .codegen import Scope
from .emit import Module, Origin, Writer, literal, origin_of
from .statements import TemplateCompiler
from .syntax import parse, passes_through, single_expression

__all__ = [
    "Leaf",
    "bind",
    "context_names",
    "has_template",
    "leaf_ast",
    "locator",
    "names_of",
    "write_function",
    "write_tree",
    "write_value",
]

Where = Callable[[str], str]


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(eq=False)
class Leaf:
    """A compiled template tree (or a bare expression): call it with a context mapping.

    ``kind`` is ``expression`` (a bare expression, its value), ``tree`` (a YAML tree whose
    string leaves are templates: nulls left out of mappings) or ``pieces`` (text made of
    literal parts and expressions, each printed with ``str``: what reviews show)."""

    kind: str
    source: Any
    pointer: str = ""
    #: Set by ``bind``: the generated function.
    fn: Callable[[Mapping[str, Any]], Any] | None = field(default=None, repr=False)
    #: What the expression (or each template string of the tree) reads.
    names: frozenset[str] = frozenset()

    def __call__(self, context: Mapping[str, Any]) -> Any:
        fn = self.fn
        if fn is None:
            raise RuntimeError(f"template at {self.pointer or '(standalone)'} was never compiled")
        return fn(context)


def leaf_ast(text: str) -> tuple[str, nodes.Node]:
    """("value", expression node) for a leaf that is exactly ``{{ expression }}`` (it keeps its
    type), else ("text", template); the text must have been inspected."""
    expression = single_expression(text)
    if expression is not None:
        return "value", parse("{{ " + expression + " }}").body[0].nodes[0]  # type: ignore[attr-defined]
    return "text", parse(text)


def fixed_for_run(text: str, scope: Scope) -> bool:
    """Whether a template string reads only names fixed for a run and has no statements
    (its value can then be computed once per run, in the caller's ``hoist``)."""
    if not names_of(text) <= scope.fixed:
        return False
    kind, node = leaf_ast(text)
    return kind == "value" or all(isinstance(part, nodes.Output) for part in node.body)  # type: ignore[attr-defined]


def names_of(text: str) -> frozenset[str]:
    """The names a template string reads (those it sets itself included)."""
    return frozenset(node.name for node in parse(text).find_all(nodes.Name) if node.ctx == "load")


def context_names(names: Iterable[str]) -> dict[str, str]:
    """The Python name each context name is bound to in generated code."""
    return {name: f"n_{name}" for name in names}


def write_value(module: Module, writer: Writer, text_or_node: Any, scope: Scope, *, checked: bool | None = None) -> str:
    """The code of one template string (or an expression node): its value."""
    if isinstance(text_or_node, str):
        kind, node = leaf_ast(text_or_node)
    else:
        kind, node = "value", text_or_node
    compiler = TemplateCompiler(module, writer, scope)
    if kind == "text":
        return compiler.text(node)  # type: ignore[arg-type]
    if checked is None:
        checked = passes_through(node) is None
    return compiler.value(node, checked=checked)  # type: ignore[arg-type]


def write_tree(
    module: Module, writer: Writer, tree: Any, scope: Scope, pointer: str, where: Where = lambda _pointer: ""
) -> str:
    """Write the statements that render ``tree``; returns the code of its value."""
    if isinstance(tree, dict):
        out = writer.local("m")
        writer.line(f"{out} = {{}}")
        for key, value in tree.items():
            child = f"{pointer}/{escape_pointer(str(key))}"
            key_code = literal(key) or module.name(key, "key")
            if value is None:
                continue
            code = write_tree(module, writer, value, scope, child, where)
            if _is_template(value):
                writer.line(f"if {code} is not None:")
                with writer.block():
                    writer.line(f"{out}[{key_code}] = {code}")
            else:
                writer.line(f"{out}[{key_code}] = {code}")
        return out
    if isinstance(tree, list):
        items = [
            write_tree(module, writer, item, scope, f"{pointer}/{index}", where) for index, item in enumerate(tree)
        ]
        return "[" + ", ".join(items) + "]"
    if isinstance(tree, str) and has_template(tree):
        origin = Origin(pointer, where(pointer))
        previous, writer.origin = writer.origin, origin
        try:
            code = write_value(module, writer, tree, scope)
            if scope.hoist is not None and fixed_for_run(tree, scope):
                code = scope.hoist(code, True)
            local = writer.local("v")
            writer.line(f"{local} = {code}")
        finally:
            writer.origin = previous
        return local
    return literal(tree) or module.name(tree, "const")


def _is_template(tree: Any) -> bool:
    return isinstance(tree, str) and has_template(tree)


def bind(leaves: Iterable[Leaf], module: Module | None = None, *, where: Where = lambda _pointer: "") -> Module:
    """Write a function for every leaf into ``module`` (a new one if None), compile it once,
    and give each leaf its function."""
    module = module or Module("templates")
    pending = [leaf for leaf in leaves if leaf.fn is None]
    names = [write_function(module, leaf, where) for leaf in pending]
    namespace = module.compile()
    for leaf, name in zip(pending, names, strict=True):
        leaf.fn = namespace[name]
    return module


def write_function(module: Module, leaf: Leaf, where: Where = lambda _pointer: "") -> str:
    """Write ``leaf``'s standalone function (``def name(c)``); returns its name."""
    name = module.fresh("render")
    writer = Writer(module, indent=2 if leaf.kind == "tree" else 1)
    scope = Scope(context_names(leaf.names), frozenset())
    for jinja_name, python_name in scope.names.items():
        undefined = module.name(helpers.undefined, "undefined")
        writer.line(f"{python_name} = c[{jinja_name!r}] if {jinja_name!r} in c else {undefined}({jinja_name!r})")
    origin = Origin(leaf.pointer, where(leaf.pointer)) if leaf.pointer else None
    if leaf.kind == "expression":
        writer.origin = origin
        writer.line(f"return {write_value(module, writer, leaf.source, scope)}")
        module.add(f"def {name}(c):", writer, origin)
        return name
    if leaf.kind == "pieces":
        parts = []
        for piece in leaf.source:
            if isinstance(piece, str):
                parts.append(repr(piece))
            else:
                code = write_value(module, writer, piece, scope, checked=False)
                parts.append(f"str({code})")
        writer.line(f"return ''.join(({', '.join(parts)},))" if parts else "return ''")
        module.add(f"def {name}(c):", writer, origin)
        return name
    code = write_tree(module, writer, leaf.source, scope, leaf.pointer, where)
    writer.line(f"return {code}")
    locate = module.name(locator(module), "located")
    header = Writer(module)  # the bindings, then the tree, inside one try
    header.line("try:")
    header.lines += writer.lines
    header.line("except Exception as error:")
    header.line(f"    raise {locate}(error) from error")
    module.add(f"def {name}(c):", header, origin)
    return name


def locator(module: Module) -> Callable[[Exception], LeafRenderError]:
    """Turns an error raised inside ``module`` into a LeafRenderError naming the leaf it came from."""
    found = module.extras.get("locator")
    if found is not None:
        return found  # type: ignore[no-any-return]

    def located(error: Exception) -> LeafRenderError:
        if isinstance(error, LeafRenderError):
            return error
        origin = origin_of(module, error.__traceback__)
        return LeafRenderError(origin.pointer if origin else "", error)

    module.extras["locator"] = located
    return located
