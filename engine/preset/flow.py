"""What flows where in a preset, worked out once from its source when it loads.

Two questions are answered by reading which names each template leaf reads:

- **Which rendered values derive from a secret setting.** A leaf that reads
  ``settings.<name>`` of a ``secret: true`` setting (or ``settings`` as a whole),
  or a variable or field that does. Reviews (goldens, ``relay render``, dry runs)
  show those values as ``<redacted>`` by their position in the request; no text is
  ever searched for the secret, so nothing else is mangled.
- **How big a rendered request can get.** Every value a template builds is within
  the template limits (``relay.expr.limits``), but a request with many leaves, or
  leaves that pass on a whole tree of fields, could add up to far more. The
  request's *weight* counts the values it can hold; only a preset whose weight
  could pass ``MAX_REQUEST`` pays for a size check at render time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes

from ..errors import TemplateError
from ..expr.limits import MAX_TEXT
from ..expr.templates import REDACTED, Leaf, Renderer, parse, passes_through, single_expression

__all__ = ["MAX_REQUEST", "Flow", "SecretLeaf", "credential_shown"]

#: Characters in a rendered request (URL, headers and body). Checked at render time
#: only for presets whose requests could hold more (see ``Flow.weight``).
MAX_REQUEST = 32 * MAX_TEXT

#: (where in the request, e.g. ("body", "Properties", "key"); what a review shows there)
SecretLeaf = tuple[tuple[str | int, ...], Renderer]

_WHOLE = object()  # a name read as a whole (``settings``), not by a fixed key
_CAP = 1 << 40  # weights stop growing here: far past any limit, and never a huge integer


def _all_nodes(tree: nodes.Node) -> Iterator[nodes.Node]:
    return itertools.chain((tree,), tree.find_all(nodes.Node))


def _keys_read(tree: nodes.Node) -> Iterator[tuple[str, Any]]:
    """Each name a template reads for its value, with the fixed key it reads (or _WHOLE).

    Not counted: a name read only as the key of ``hmac_sha256`` (a signature is made to be
    shown, as every receiver sees it, and does not give away the key it was made with), and
    a name only tested for presence (``settings.token is not none``: whether a secret is set
    is not the secret).
    """
    found = list(_all_nodes(tree))
    keyed = {id(inner) for node in found for part in _not_values(node) for inner in _all_nodes(part)}
    keys: dict[int, Any] = {}
    for node in found:
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            keys[id(node.node)] = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name):
            fixed = isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)
            keys[id(node.node)] = node.arg.value if fixed else _WHOLE  # type: ignore[attr-defined]
    for node in found:
        if isinstance(node, nodes.Name) and node.ctx == "load" and id(node) not in keyed:
            yield node.name, keys.get(id(node), _WHOLE)


_PRESENCE_TESTS = frozenset({"none", "defined", "undefined"})


def _not_values(node: nodes.Node) -> tuple[nodes.Node, ...]:
    """The parts of ``node`` whose value does not flow into the result (see _keys_read)."""
    if isinstance(node, nodes.Filter) and node.name == "hmac_sha256":
        return (*node.args, *(keyword.value for keyword in node.kwargs))
    if isinstance(node, nodes.Test) and node.name in _PRESENCE_TESTS:
        return (node.node,)
    return ()


def _passed(node: nodes.Node) -> set[tuple[str, str]] | None:
    """The names (with the first key read of each, or "") whose values an expression passes
    on as read, like ``passes_through``; None when it builds its value."""
    if passes_through(node) is None:
        return None
    if isinstance(node, (nodes.Or, nodes.And)):
        return (_passed(node.left) or set()) | (_passed(node.right) or set())
    if isinstance(node, nodes.CondExpr):
        otherwise = _passed(node.expr2) if node.expr2 is not None else None
        return (_passed(node.expr1) or set()) | (otherwise or set())
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):  # mapping.get(key): a part of it
        return (_passed(node.node.node) or set()) | {
            found for arg in node.args[1:] for found in (_passed(arg) or set())
        }
    key = ""
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        key = node.attr if isinstance(node, nodes.Getattr) else str(node.arg.value)  # type: ignore[attr-defined]
        node = node.node
    return {(node.name, key)} if isinstance(node, nodes.Name) else set()


def _leaves(tree: Any) -> Iterator[str]:
    if isinstance(tree, Mapping):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _leaves(value)
    elif isinstance(tree, str) and "{" in tree:
        yield tree


class Flow:
    """Secret-derived names and value weights of one preset, from its (schema-valid) data."""

    def __init__(self, data: Mapping[str, Any], secret_settings: Iterable[str]) -> None:
        self.secret_settings = frozenset(secret_settings)
        self.secret_variables: set[str] = set()
        self.secret_fields: set[str] = set()
        self.weights: dict[str, int] = {}
        self._leaf_secret: dict[str, bool] = {}  # by source, once the names below are settled
        #: The reviews made (templates of their own), compiled with the preset's other templates.
        self.leaves: list[Leaf] = []
        self._settled = False
        rules = [rule for rule in data.get("rules", []) if isinstance(rule.get("set"), Mapping)]
        for _ in range(len(rules) + 1):  # a rule may read what another rule sets: until nothing changes
            changed = False
            for rule in rules:
                for variable, value in rule["set"].items():
                    if variable not in self.secret_variables and self._tree_reads_secret(value):
                        self.secret_variables.add(variable)
                        changed = True
                    weight = self.tree_weight(value)
                    if weight > self.weights.get(variable, 1):
                        self.weights[variable] = weight
                        changed = True
            if not changed:
                break
        shared = data.get("fields", {})
        own = [mapping.get("fields", {}) for mapping in data.get("mappings", [])]
        for tree in (shared, *own):
            for key, value in tree.items():
                if self._tree_reads_secret(value):
                    self.secret_fields.add(str(key))
        # A render uses the shared fields and one mapping's (merged key by key).
        self.weights["fields"] = min(self.tree_weight(shared) + max(map(self.tree_weight, own), default=0), _CAP)
        for key in {str(k) for tree in (shared, *own) for k in tree}:
            mine = max((self.tree_weight(tree.get(key)) for tree in own), default=0)
            self.weights[f"fields.{key}"] = min(self.tree_weight(shared.get(key)) + mine, _CAP)
        self._settled = True

    # -- secrets ------------------------------------------------------------------

    def reads_secret(self, tree: nodes.Node, also: frozenset[str] = frozenset()) -> bool:
        """True when ``tree`` reads a secret setting, or a name derived from one (or in ``also``)."""
        for name, key in _keys_read(tree):
            if name == "settings" and (key in self.secret_settings or (key is _WHOLE and self.secret_settings)):
                return True
            if name == "fields" and (key in self.secret_fields or (key is _WHOLE and self.secret_fields)):
                return True
            if name in self.secret_variables or name in also:
                return True
        return False

    def leaf_reads_secret(self, source: str, also: frozenset[str] = frozenset()) -> bool:
        known = None if also else self._leaf_secret.get(source)
        if known is not None:
            return known
        try:
            reads = self.reads_secret(parse(source), also)
        except TemplateError:
            reads = False  # reported where the leaf is compiled
        if self._settled and not also:  # while variables and fields are being found, an answer may change
            self._leaf_secret[source] = reads
        return reads

    def _tree_reads_secret(self, tree: Any) -> bool:
        return any(self.leaf_reads_secret(leaf) for leaf in _leaves(tree))

    def review(self, source: str, also: frozenset[str] = frozenset(), *, url: bool = False) -> Renderer:
        """What a review shows for a leaf that reads a secret. A text template keeps its
        text and its other parts (``https://hooks.example.com/<redacted>``); any other
        leaf shows ``<redacted>`` as a whole. In a URL, a part that renders into the host
        is shown too: a host travels in clear (DNS, TLS SNI), so it cannot hold a secret
        (``https://{{ data_centre }}.api.example.com``, a centre named by a key's suffix)."""
        whole: Renderer = _constant(REDACTED)
        if single_expression(source) is not None:
            return whole
        template = parse(source)
        if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
            return whole
        pieces: list[str | nodes.Node] = []
        text = ""  # the literal text so far: where in the URL the next part lands
        for piece in template.body[0].nodes:
            if isinstance(piece, nodes.TemplateData):
                pieces.append(piece.data)
                text += piece.data
                continue
            in_host = url and "://" in text and not any(c in text.split("://", 1)[1] for c in "/?#")
            pieces.append(REDACTED if self.reads_secret(piece, also) and not in_host else piece)
        names = frozenset(
            name.name
            for piece in pieces
            if not isinstance(piece, str)
            for name in (piece, *piece.find_all(nodes.Name))
            if isinstance(name, nodes.Name) and name.ctx == "load"
        )
        leaf = Leaf("pieces", pieces, names=names)
        self.leaves.append(leaf)
        return leaf

    def request(
        self, leaves: Iterable[tuple[tuple[str | int, ...], str]], credentials: int
    ) -> tuple[tuple[SecretLeaf, ...], bool]:
        """For a request's template leaves, each by its place (("body", "key"), ("url",)...):
        the (place, review) of each leaf that reads a secret, and whether the request's size
        must be checked when it renders. Headers may read ``content``, the encoded body: it is
        as secret, and as big, as the body's leaves."""
        leaves = list(leaves)
        body = [source for path, source in leaves if path[0] == "body"]
        also = frozenset({"content"}) if any(self.leaf_reads_secret(source) for source in body) else frozenset()
        secret = tuple(
            (path, self.review(source, also, url=path == ("url",)))
            for path, source in leaves
            if self.leaf_reads_secret(source, also)
        )
        self.weights["content"] = min(sum(map(self.leaf_weight, body)), _CAP)
        weight = sum(self.leaf_weight(source) for _, source in leaves) + credentials
        return secret, weight * MAX_TEXT > MAX_REQUEST

    # -- sizes --------------------------------------------------------------------

    def leaf_weight(self, source: str) -> int:
        """How many template-sized values a leaf can hold: 1, unless it passes on a tree
        it did not build (``{{ fields }}``, or a variable a rule set to a mapping)."""
        expression = single_expression(source)
        if expression is None:
            return 1  # text: its output as a whole is within MAX_TEXT
        try:
            passed = _passed(parse("{{ " + expression + " }}").body[0].nodes[0])  # type: ignore[attr-defined]
        except TemplateError:
            return 1
        weights = self.weights
        return max((weights.get(f"{n}.{k}", weights.get(n, 1)) for n, k in passed or ()), default=1)

    def tree_weight(self, tree: Any) -> int:
        return min(sum(self.leaf_weight(leaf) for leaf in _leaves(tree)), _CAP)


def credential_shown(source: str) -> str:
    """What a review shows for a credential written as ``source``: its literal text, and
    ``<redacted>`` for every template part (``Token {{ settings.key }}`` -> ``Token <redacted>``)."""
    try:
        template = parse(source)
    except TemplateError:
        return REDACTED
    if (
        single_expression(source) is not None
        or len(template.body) != 1
        or not isinstance(template.body[0], nodes.Output)
    ):
        return REDACTED
    pieces = template.body[0].nodes
    return "".join(piece.data if isinstance(piece, nodes.TemplateData) else REDACTED for piece in pieces)


def _constant(value: Any) -> Renderer:
    return lambda _context: value
