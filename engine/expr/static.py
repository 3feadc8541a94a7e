"""Checks on a template's syntax tree that need no event: its statements and its constant parts."""

from __future__ import annotations

from jinja2 import nodes

from ..errors import LimitError, TemplateError
from . import limits
from .codegen import evaluate_constant

__all__ = ["MAX_NESTING", "MAX_STATEMENT_NESTING", "check_constants", "check_depth", "check_statements"]

#: How deeply expressions may nest (``((a))``, ``a.b.c``, ``f(g(x))``): generated Python
#: stays well inside what Python's own parser accepts.
MAX_NESTING = 60
#: How deeply statements may nest (``{% for %}`` in ``{% if %}`` in ...).
MAX_STATEMENT_NESTING = 8

#: Statements a preset template may not use: macros can recurse (exponential time for
#: a few lines), and the others need a template loader, which presets do not have.
_REFUSED_STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Block: "block",
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.ScopedEvalContextModifier: "autoescape",
    nodes.EvalContextModifier: "autoescape",
    nodes.ExprStmt: "do",
    nodes.Break: "break",
    nodes.Continue: "continue",
    nodes.Scope: "autoescape",  # Jinja wraps an autoescape block in a Scope
    nodes.OverlayScope: "overlay",
}


def check_statements(everything: list[nodes.Node]) -> None:
    """Refuse the statements a preset may not use; ``everything`` is every node of the template."""
    for statement in everything:
        if not isinstance(statement, (*_REFUSED_STATEMENTS, nodes.For)):
            continue
        if isinstance(statement, nodes.For):
            if statement.recursive:
                raise TemplateError("recursive loops are not allowed in a preset template", line=statement.lineno)
            continue
        raise TemplateError(
            f"`{{% {_REFUSED_STATEMENTS[type(statement)]} %}}` is not allowed in a preset template",
            line=statement.lineno,
            hint="templates may use if, for, set, with and filter blocks",
        )


def check_constants(tree: nodes.Node, everything: list[nodes.Node]) -> None:
    """Evaluate every sub-expression that reads no name, once, through the sandbox.

    Jinja no longer folds constants while compiling (see sandbox.py), so this is the
    only compile-time evaluation: ``{{ 'a' * 1000000000 }}`` is refused here, at load
    time and located, instead of at every render. A constant part that fails for any
    other reason (``1 / 0`` in a branch never taken) is left to fail at render time.
    ``everything`` is every node of ``tree``: most templates only read names, and are done at once.
    """
    if all(isinstance(node, _PASSIVE) for node in everything):
        return
    reads_names: set[int] = set()
    _mark_names(tree, reads_names)
    pending = [tree]
    while pending:
        node = pending.pop()
        if id(node) not in reads_names and isinstance(node, nodes.Expr) and not isinstance(node, _LEAF_NODES):
            try:
                limits.check_text(evaluate_constant(node))
            except LimitError as exc:
                raise TemplateError(str(exc), line=node.lineno) from None
            except Exception:
                pass  # fails when it runs (a branch maybe never taken): its parts may still be checked
            else:
                continue
        pending.extend(node.iter_child_nodes())


_LEAF_NODES = (nodes.Const, nodes.TemplateData, nodes.Name)
#: Nodes that compute nothing: a template made only of these has no constant part to check.
_PASSIVE = (*_LEAF_NODES, nodes.Template, nodes.Output, nodes.Getattr, nodes.Getitem)


def _mark_names(node: nodes.Node, reads_names: set[int]) -> bool:
    """Record (by id) every node whose subtree reads a name; True when ``node`` does."""
    reads = isinstance(node, nodes.Name)
    for child in node.iter_child_nodes():
        reads = _mark_names(child, reads_names) or reads
    if reads:
        reads_names.add(id(node))
    return reads


_STATEMENTS = (nodes.For, nodes.If, nodes.With, nodes.FilterBlock, nodes.AssignBlock)


def check_depth(tree: nodes.Node) -> None:
    """Refuse a template nested past MAX_NESTING expressions or MAX_STATEMENT_NESTING statements."""
    pending: list[tuple[nodes.Node, int, int]] = [(tree, 0, 0)]
    while pending:
        node, depth, statements = pending.pop()
        if isinstance(node, nodes.Expr):
            depth += 1
            if depth > MAX_NESTING:
                raise TemplateError(
                    f"template limit: the template is nested too deeply (expressions nest at most {MAX_NESTING} deep)",
                    line=node.lineno or 1,
                )
        elif isinstance(node, _STATEMENTS):
            statements += 1
            if statements > MAX_STATEMENT_NESTING:
                raise TemplateError(
                    "template limit: the template is nested too deeply "
                    f"(statements nest at most {MAX_STATEMENT_NESTING} deep)",
                    line=node.lineno or 1,
                )
        pending.extend((child, depth, statements) for child in node.iter_child_nodes())
