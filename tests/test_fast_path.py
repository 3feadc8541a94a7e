"""The fast path (templates compiled to closures, fastjsonschema) and the plain path
(Jinja's own compiled code, jsonschema) give identical results for every golden."""

from __future__ import annotations

import copy
import json
from typing import Any

import fastjsonschema
import pytest
from jsonschema import Draft202012Validator

from relay import CompiledPreset, load_preset
from relay.authoring.golden import discover_cases, outcome_of
from relay.expr.templates import compile_expression, plain_templates
from relay.preset.schema import BodyValidator
from tests.paths import ROOT

PRESETS = sorted(p.parent.name for p in (ROOT / "presets").glob("*/preset.yaml"))


@pytest.fixture(scope="module")
def plain_presets() -> dict[str, CompiledPreset]:
    with plain_templates():
        return {name: load_preset(ROOT / "presets" / name) for name in PRESETS}


CASES = [case for name in PRESETS for case in discover_cases(name)]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_golden_is_identical_on_both_paths(
    case: Any, presets: dict[str, CompiledPreset], plain_presets: dict[str, CompiledPreset]
) -> None:
    fast = outcome_of(presets[case.preset], case.settings, case.event, case.answers, case.now)
    plain = outcome_of(plain_presets[case.preset], case.settings, case.event, case.answers, case.now)
    assert json.dumps(fast) == json.dumps(plain)  # order-sensitive, like the goldens


EXPRESSIONS: list[tuple[str, dict[str, Any]]] = [
    ("a.b", {"a": {"b": 1}}),
    ("a.items", {"a": {"items": 1}}),  # Jinja prefers the dict method: both paths must agree
    ("a['b'] ~ '-' ~ 2", {"a": {"b": "x"}}),
    ("a if b else c", {"a": 1, "b": 0, "c": 3}),
    ("a is none or b is not none", {"a": 1, "b": None}),
    ("x in [1, 2] and not y", {"x": 2, "y": False}),
    ("[a, b] | select | join(' ')", {"a": "A", "b": None}),
    ("{k: v}", {"k": "key", "v": [1]}),
    ("d.get('k', 'none')", {"d": {"j": 1}}),
    ("n * 2 + 1 - 3 // 2 % 5", {"n": 7}),
    ("-n", {"n": 4}),
    ("s | trim | lower | replace('a', 'b')", {"s": "  AaA "}),
    ("v | to_number | float", {"v": "3"}),
    ("e is valid_email", {"e": "a@example.com"}),
    ("t.x is defined", {"t": {}}),
]


@pytest.mark.parametrize(("expression", "context"), EXPRESSIONS)
def test_expressions_agree(expression: str, context: dict[str, Any]) -> None:
    allowed: dict[str, Any] = dict.fromkeys(context)
    fast = compile_expression(expression, allowed)
    with plain_templates():
        plain = compile_expression(expression, allowed)
    assert fast(context) == plain(context)


@pytest.mark.parametrize("expression", ["a.b", "a < b", "a ~ 'x'", "a.__class__"])
def test_both_paths_fail_alike(expression: str) -> None:
    allowed: dict[str, Any] = {"a": None, "b": None}
    context = {"a": {} if expression == "a.b" else object(), "b": 1}
    outcomes = []
    for mode in ("fast", "plain"):
        if mode == "plain":
            with plain_templates():
                evaluate = compile_expression(expression, allowed)
        else:
            evaluate = compile_expression(expression, allowed)
        try:
            outcomes.append(("ok", evaluate(context)))
        except Exception as exc:
            outcomes.append(("error", type(exc).__name__))
    assert outcomes[0][0] == outcomes[1][0] and (outcomes[0][0] == "error" or outcomes[0] == outcomes[1])


def test_fast_and_plain_schema_validation_agree(presets: dict[str, CompiledPreset]) -> None:
    checked = 0
    for case in CASES:
        if case.expected.get("decision") != "send":
            continue
        spec_bodies = [request["body"] for request in case.expected["requests"] if request["body"] is not None]
        if not spec_bodies:
            continue
        body = copy.deepcopy(spec_bodies[0])
        if isinstance(body, dict) and body:
            key = next(iter(body))
            spec_bodies += [
                {**body, key: None},
                {**body, "unexpected_key": 1},
                {k: v for k, v in body.items() if k != key},
            ]
        preset = presets[case.preset]
        validators = [step.validator for step in preset.steps if step.validator is not None]
        for validator in validators:
            fast = fastjsonschema.compile(validator.schema)
            plain = Draft202012Validator(validator.schema)
            for candidate in spec_bodies:
                try:
                    fast(candidate)
                    fast_ok = True
                except fastjsonschema.JsonSchemaException:
                    fast_ok = False
                assert fast_ok == plain.is_valid(candidate), (case.id, candidate)
                assert BodyValidator(validator.schema).errors(candidate) == [] if fast_ok else True
                checked += 1
    assert checked > 100
