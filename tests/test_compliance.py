"""The expression language's compliance corpus (tests/compliance/), run on every evaluation path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from relay.expr.templates import compile_expression, plain_templates

CORPUS = Path(__file__).parent / "compliance"


def _cases() -> list[Any]:
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for group, data in YAML(typ="safe").load(path.read_text(encoding="utf-8")).items():
            for index, case in enumerate(data["cases"]):
                out.append(pytest.param(data["given"], case, id=f"{path.stem}/{group}/{index}:{case['expression']}"))
    return out


def _evaluate(expression: str, given: dict[str, Any], plain: bool) -> Any:
    allowed = {name: None for name in given}
    if plain:
        with plain_templates():
            return compile_expression(expression, allowed)(given)
    return compile_expression(expression, allowed)(given)


@pytest.mark.parametrize("plain", [False, True], ids=["compiled", "jinja"])
@pytest.mark.parametrize(("given", "case"), _cases())
def test_corpus(given: dict[str, Any], case: dict[str, Any], plain: bool) -> None:
    if "error" in case:
        with pytest.raises(Exception) as caught:
            _evaluate(case["expression"], given, plain)
        assert case["error"] in str(caught.value), str(caught.value)
    else:
        assert _evaluate(case["expression"], given, plain) == case["result"]


def test_the_corpus_names_every_filter_and_test() -> None:
    from relay.expr.filters import CUSTOM_FILTERS
    from relay.expr.sandbox import ENVIRONMENT

    text = "\n".join(p.read_text() for p in CORPUS.glob("*.yaml"))
    missing = [name for name in [*CUSTOM_FILTERS, "valid_email"] if name not in text]
    assert not missing, f"no compliance case uses: {missing}"
    assert ENVIRONMENT.tests["valid_email"]
