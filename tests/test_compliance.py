"""The compliance corpora (tests/compliance/): the expression language and selector paths as data.

``expressions.yaml`` cases run twice: through relay's compiled code (the one way relay
evaluates templates) and through Jinja's own rendering in the same sandbox (the
reference). Both must give the expected result, or fail with the expected message.
``paths.yaml`` cases run through relay's compiled selector paths and through
``jmespath.search``, which must agree on every document.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jmespath
import pytest
from jinja2 import Undefined
from ruamel.yaml import YAML

from relay.errors import TemplateError
from relay.expr.filters import CUSTOM_FILTERS
from relay.expr.limits import check_text
from relay.expr.paths import compile_path
from relay.expr.sandbox import BUILTIN_FILTERS, ENVIRONMENT
from relay.expr.syntax import passes_through
from relay.expr.templates import compile_expression, compile_tree, parse

CORPUS = Path(__file__).parent / "compliance"
WAYS = ["compiled", "jinja"]


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((CORPUS / name).read_text(encoding="utf-8"))
    return data


def _cases() -> list[Any]:
    out = []
    for group, data in _load("expressions.yaml").items():
        for index, case in enumerate(data["cases"]):
            given = {**data.get("given", {}), **case.get("given", {})}
            source = case.get("expression", case.get("template"))
            out.append(pytest.param(given, case, id=f"{group}/{index}:{source}"))
    return out


def _jinja(case: dict[str, Any], given: dict[str, Any]) -> Any:
    """The reference: Jinja's own compiled code in relay's sandbox, as relay uses a value."""
    if "template" in case:
        return ENVIRONMENT.from_string(case["template"]).render(**given)
    value = ENVIRONMENT.compile_expression(case["expression"], undefined_to_none=False)(**given)
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if passes_through(parse("{{ " + case["expression"] + " }}").body[0].nodes[0]) is None:  # type: ignore[attr-defined]
        check_text(value)
    return value


def _compiled(case: dict[str, Any], given: dict[str, Any]) -> Any:
    allowed = dict.fromkeys(given)
    if "template" in case:
        problems: list[Any] = []
        renderer = compile_tree(case["template"], allowed, problems, "/t")
        assert not problems, problems
        try:
            return renderer(given)
        except Exception as exc:  # a tree reports its leaf: the cause is what Jinja raises
            raise getattr(exc, "cause", exc) from None
    return compile_expression(case["expression"], allowed)(given)


def _plain(value: Any) -> Any:
    """A result as the corpus writes it: tuples and generators as lists."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "generator":
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("given", "case"), _cases())
def test_expression_corpus(given: dict[str, Any], case: dict[str, Any], way: str) -> None:
    evaluate = _compiled if way == "compiled" else _jinja
    if "refused" in case:  # relay refuses it when the preset loads; Jinja would run it
        if way == "compiled":
            with pytest.raises((TemplateError, AssertionError), match=re.escape(case["refused"])):
                evaluate(case, given)
        return
    if "error" in case:
        with pytest.raises(Exception) as caught:
            evaluate(case, given)
        assert case["error"] in str(caught.value), str(caught.value)
        return
    result = _plain(evaluate(case, given))
    assert result == case["result"], result
    assert json.dumps(result) == json.dumps(case["result"]), "same types (1 is not 1.0 or true)"


def test_the_corpus_covers_every_filter_test_and_operator() -> None:
    text = (CORPUS / "expressions.yaml").read_text(encoding="utf-8")
    names = [*BUILTIN_FILTERS, *CUSTOM_FILTERS, *ENVIRONMENT.tests]
    missing = [
        name for name in names if f"| {name}" not in text and f"is {name}" not in text and f"'{name}'" not in text
    ]
    assert not missing, f"no compliance case uses: {missing}"
    for operator in ("+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=", " in ", " not in "):
        assert operator in text, operator
    for statement in ("{% for", "{% if", "{% elif", "{% else", "{% set", "{% with", "{% filter", "{% endset"):
        assert statement in text, statement


# -- selector paths --------------------------------------------------------------


def _path_cases() -> list[Any]:
    data = _load("paths.yaml")
    return [
        pytest.param(path, document, id=f"{path}@{index}")
        for path in data["paths"]
        for index, document in enumerate(data["documents"])
    ]


@pytest.mark.parametrize(("path", "document"), _path_cases())
def test_selector_paths_agree_with_jmespath(path: str, document: Any) -> None:
    assert _outcome(compile_path(path), document) == _outcome(lambda d: jmespath.search(path, d), document)


def _outcome(search: Any, document: Any) -> tuple[str, str]:
    try:
        return "ok", json.dumps(search(document))
    except Exception as exc:  # e.g. length(null): the same error either way
        return "error", type(exc).__name__


def test_plain_paths_are_compiled_to_lookups() -> None:
    # A plain path is not run through jmespath at all (the corpus above holds it to jmespath).
    assert not hasattr(compile_path("traits.email"), "__self__")
    assert not hasattr(compile_path('context."first-name"'), "__self__")
    assert hasattr(compile_path("items[0]"), "__self__")  # anything else is jmespath's own
