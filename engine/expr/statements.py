"""Compile the statements of a template (``{% for %}``, ``{% if %}``, ``{% set %}``, ``{% with %}``,
``{% filter %}``) to Python, as Jinja's own code generator does in the sandbox.

Scopes are as in Jinja: a loop body, a ``with`` block, a filter block and a ``set`` block
each see the names around them and keep the names they set to themselves; every name a
scope sets is a Python name of its own, starting from the outer value each time the scope
is entered (each iteration, for a loop). All loops of one rendering share one budget of
``limits.MAX_ITERATIONS`` items. ``loop`` is Jinja's own ``LoopContext``.
"""

from __future__ import annotations

from jinja2 import nodes

from ..errors import TemplateError
from . import helpers, limits
from .codegen import Compiler
from .sandbox import ENVIRONMENT
from .syntax import names_read

__all__ = ["TemplateCompiler"]


class TemplateCompiler(Compiler):
    """A Compiler that also compiles statements (a template's text, written into a list)."""

    depth = 0
    budget = ""

    def text(self, template: nodes.Template) -> str:
        """The code of a template's text; statements it needs are written first."""
        body = template.body
        if all(isinstance(piece, nodes.Output) for piece in body):
            return super().text(template)
        names_read(template, self.reads)
        self.statements = True
        out = self.writer.local("o")
        self.writer.line(f"{out} = []")
        if next(template.find_all(nodes.For), None) is not None:
            self.budget = self.writer.local("b")
            self.writer.line(f"{self.budget} = [{limits.MAX_ITERATIONS}]")
        self._open_frame(body, initial=True)
        self._block(body, out)
        return f"{self.global_(helpers.concat, 'concat')}({out})"

    # -- statements -----------------------------------------------------------------

    def _block(self, body: list[nodes.Node], out: str) -> None:
        if not body:
            self.writer.line("pass")
        for node in body:
            self._statement(node, out)

    def _statement(self, node: nodes.Node, out: str) -> None:
        writer = self.writer
        if isinstance(node, nodes.Output):
            for part in node.nodes:
                writer.line(f"{out}.append({self._text_part(part)})")
        elif isinstance(node, nodes.If):
            writer.line(f"if {self.expr(node.test, 0)}:")
            with writer.block():
                self._block(node.body, out)
            for branch in node.elif_:
                writer.line(f"elif {self.expr(branch.test, 0)}:")
                with writer.block():
                    self._block(branch.body, out)
            if node.else_:
                writer.line("else:")
                with writer.block():
                    self._block(node.else_, out)
        elif isinstance(node, nodes.For):
            self._for(node, out)
        elif isinstance(node, nodes.Assign):
            writer.line(self._assign(node.target, self.expr(node.node, 0)))
        elif isinstance(node, nodes.AssignBlock):
            value = self._captured(node.body, node.filter)
            writer.line(self._assign(node.target, value))
        elif isinstance(node, nodes.With):
            values = [self.expr(value, 0) for value in node.values]
            outer = self._open_frame([*node.targets, *node.body])
            for target, value in zip(node.targets, values, strict=True):
                writer.line(self._assign(target, value))
            self._block(node.body, out)
            self._close_frame(outer)
        elif isinstance(node, nodes.FilterBlock):
            writer.line(f"{out}.append({self._captured(node.body, node.filter)})")
        else:
            word = type(node).__name__.lower()
            raise TemplateError(f"`{{% {word} %}}` is not allowed in a preset template", line=node.lineno or 1)

    def _captured(self, body: list[nodes.Node], filter_: nodes.Filter | None) -> str:
        """The text ``body`` writes (in a scope of its own), through ``filter_`` when given."""
        inner = self.writer.local("o")
        self.writer.line(f"{inner} = []")
        outer = self._open_frame(body)
        self._block(body, inner)
        self._close_frame(outer)
        value = f"{self.global_(helpers.concat, 'concat')}({inner})"
        return self._filtered(filter_, value) if filter_ is not None else value

    def _filtered(self, node: nodes.Filter, value: str) -> str:
        if node.node is None:
            return self.filter_call(node, value, 0)
        return self.filter_call(node, self._filtered(node.node, value), 0)  # type: ignore[arg-type]

    def _for(self, node: nodes.For, out: str) -> None:
        if node.recursive:
            raise TemplateError("recursive loops are not allowed in a preset template", line=node.lineno or 1)
        writer = self.writer
        items = f"{self.global_(helpers.counted, 'counted')}({self.expr(node.iter, 0)}, {self.budget})"
        uses_loop = any(
            isinstance(inner, nodes.Name) and inner.name == "loop"
            for part in node.body
            for inner in (part, *part.find_all(nodes.Name))
        )
        ran = writer.local("ran") if node.else_ else None
        if ran:
            writer.line(f"{ran} = False")
        outer = self._open_frame([node.target, *node.body], initial=False)
        target = self._target(node.target)
        test = node.test
        if uses_loop:
            self.frame["loop"] = f"n{self.depth}_loop"
            if test is not None:  # as in Jinja: the loop counts only the items that pass
                chosen = writer.local("chosen")
                writer.line(f"def {chosen}(items):")
                with writer.block():
                    writer.line(f"for {target} in items:")
                    with writer.block():
                        writer.line(f"if {self.expr(test, 0)}:")
                        with writer.block():
                            writer.line(f"yield {target}")
                items, test = f"{chosen}({items})", None
            context = self.global_(helpers.LoopContext, "LoopContext")
            undefined = self.global_(ENVIRONMENT.undefined, "Undefined")
            writer.line(f"for {target}, {self.frame['loop']} in {context}({items}, {undefined}):")
        else:
            writer.line(f"for {target} in {items}:")
        with writer.block():
            self._initialise(outer, node.body)
            if test is not None:
                writer.line(f"if not {self.expr(test, 0)}:")
                with writer.block():
                    writer.line("continue")
            if ran:
                writer.line(f"{ran} = True")
            self._block(node.body, out)
        self._close_frame(outer)
        if ran:
            writer.line(f"if not {ran}:")
            with writer.block():
                outer = self._open_frame(node.else_)
                self._block(node.else_, out)
                self._close_frame(outer)

    def _target(self, node: nodes.Node) -> str:
        if isinstance(node, nodes.Name):
            return self.frame[node.name]
        if isinstance(node, nodes.Tuple):
            return (
                "(" + ", ".join(self._target(item) for item in node.items) + ("," if len(node.items) == 1 else "") + ")"
            )
        raise TemplateError("a loop or `set` can only assign names", line=node.lineno or 1)

    def _assign(self, target: nodes.Node, value: str) -> str:
        if isinstance(target, nodes.NSRef):
            fail = self.global_(helpers.namespace_only, "namespace_only")
            return f"{fail}({self.frame.get(target.name, 'None')}, {target.attr!r}, {value})"
        return f"{self._target(target)} = {value}"

    def _open_frame(self, body: list[nodes.Node], *, initial: bool = True) -> dict[str, str]:
        """Enter a scope for ``body``: each name it sets gets a Python name of its own, starting
        from the outer value (as in Jinja). Returns the outer frame, to restore on leaving."""
        outer = self.frame
        self.depth += 1
        self.frame = dict(outer)
        for name in _stored(body):
            self.frame[name] = f"n{self.depth}_{name}"
        if initial:
            self._initialise(outer, body)
        return outer

    def _close_frame(self, outer: dict[str, str]) -> None:
        self.frame = outer
        self.depth -= 1

    def _initialise(self, outer: dict[str, str], body: list[nodes.Node]) -> None:
        for name in _stored(body):
            start = outer.get(name) or f"{self.global_(helpers.undefined, 'undefined')}({name!r})"
            if start != self.frame[name]:
                self.writer.line(f"{self.frame[name]} = {start}")


def _stored(body: list[nodes.Node]) -> list[str]:
    """The names ``body`` sets in its own scope (not inside the scopes it opens)."""
    found: dict[str, None] = {}

    def visit(node: nodes.Node) -> None:
        if isinstance(node, nodes.Name):
            if node.ctx in ("store", "param"):
                found[node.name] = None
            return
        if isinstance(node, nodes.AssignBlock):
            visit(node.target)  # its body is a scope of its own
            return
        if isinstance(node, (nodes.For, nodes.With, nodes.FilterBlock)):
            return
        for child in node.iter_child_nodes():
            visit(child)

    for node in body:
        visit(node)
    return list(found)
