"""The template limits (relay.expr.limits), in the compiled code (the one way templates run).

Every way a template can make a big value is tried twice: with constants, which
must be refused when the preset loads (a located error), and with the same values
passed in as names, which must be refused when the template renders.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relay import RenderError, load_preset, render
from relay.errors import LimitError, TemplateError
from relay.expr.limits import MAX_ITERATIONS, MAX_TEXT
from relay.expr.templates import compile_expression, compile_tree

BIG = 10**9

# (expression, the names it reads): each builds a value past a limit.
HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("b ** (b ** b)", {"b": 10}),
    ("two ** 100000", {"two": 2}),
    ("(b ** 4000) * (b ** 4000)", {"b": 10}),
    ("fmt % 1", {"fmt": "%0999999999d"}),
    ("fmt % 1.5", {"fmt": "%.999999999f"}),
    ("fmt % (n, 1)", {"fmt": "%*d", "n": BIG}),
    ("fmt % {'a': 1}", {"fmt": "%(a)0999999999d"}),
    ("fmt % (s, s)", {"fmt": "%s%s", "s": "x" * 600_000}),
    ("s * n", {"s": "a", "n": BIG}),
    ("n * s", {"s": "a", "n": BIG}),
    ("l * n", {"l": [1, 2, 3], "n": BIG}),
    ("[s] * 2", {"s": "x" * 600_000}),
    ("s + s", {"s": "x" * 600_000}),
    ("s ~ s", {"s": "x" * 600_000}),
    ("[s, s] ~ ''", {"s": "x" * 600_000}),
    ("s.center(n)", {"s": "x", "n": BIG}),
    ("s.ljust(n)", {"s": "x", "n": BIG}),
    ("s.rjust(n)", {"s": "x", "n": BIG}),
    ("s.zfill(n)", {"s": "1", "n": BIG}),
    ("s.expandtabs(n)", {"s": "a\tb", "n": BIG}),
    ("s.replace('x', t)", {"s": "x" * 1000, "t": "y" * 2000}),
    ("s.translate({120: t})", {"s": "x" * 1000, "t": "y" * 2000}),
    ("'-'.join([s, s])", {"s": "x" * 600_000}),
    ("one.to_bytes(n, 'big')", {"one": 1, "n": BIG}),
    ("f.format(1)", {"f": "{:>999999999}"}),
    ("f.format(1, n)", {"f": "{0:{1}}", "n": BIG}),
    ("f.format(1.5)", {"f": "{:.999999999f}"}),
    ("f.format(s)", {"f": "{0}{0}", "s": "x" * 600_000}),
    ("f.format_map({'a': s})", {"f": "{a}{a}", "s": "x" * 600_000}),
    ("f.format(l)", {"f": "{0!r}", "l": ["x" * 600_000] * 2}),
    ("s | replace('x', t)", {"s": "x" * 1000, "t": "y" * 2000}),
    ("s | replace('x', 'yy') | replace('y', 'zz') | replace('z', 'ww')", {"s": "x" * 200_000}),
    ("[s, s] | join", {"s": "x" * 600_000}),
    ("[s, s] | join(',')", {"s": "x" * 600_000}),
    ("s | upper", {"s": "ß" * 600_000}),
    ("s | urlencode", {"s": "%" * 400_000}),
    ("s | urlencode", {"s": "\U0001d11e" * 90_000}),  # 12 characters out for each one in
    ("d | string_values", {"d": {"a": ["\x01" * 200_000]}}),  # JSON: 6 characters for each
    ("s | b64encode", {"s": "x" * 900_000}),
    ("[s, s] | to_json", {"s": "x" * 600_000}),
    ("[s, s] | string", {"s": "x" * 600_000}),
    ("[s, s] | list | sha256", {"s": "x" * 600_000}),
    ("l | sum(start=[])", {"l": [["x" * 600_000]] * 2}),
    ("[s, s, s]", {"s": "x" * 400_000}),
    ("{'a': s, 'b': s}", {"s": "x" * 600_000}),
    ("(s, s)", {"s": "x" * 600_000}),
]


def _evaluate(expression: str, names: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    return compile_expression(expression, dict.fromkeys(names))


def _constant(expression: str, names: dict[str, Any]) -> str:
    """The same expression with every name replaced by its value, written as a literal."""

    def literal(match: re.Match[str]) -> str:
        value = names[match.group(0)]
        return f"({value[:1]!r} * {len(value)})" if isinstance(value, str) and len(value) > 100 else f"({value!r})"

    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", literal, expression) if names else expression


@pytest.mark.parametrize(("expression", "names"), HOSTILE, ids=[e for e, _ in HOSTILE])
def test_hostile_values_are_refused_when_rendered(expression: str, names: dict[str, Any]) -> None:
    evaluate = _evaluate(expression, names)
    with pytest.raises(LimitError, match=r"^template limit: "):
        evaluate(names)


@pytest.mark.parametrize(("expression", "names"), HOSTILE, ids=[e for e, _ in HOSTILE])
def test_hostile_constants_are_refused_when_the_preset_loads(expression: str, names: dict[str, Any]) -> None:
    source = _constant(expression, names)
    with pytest.raises(TemplateError, match=r"^template limit: "):
        _evaluate(source, {})


ORDINARY: list[tuple[str, Any]] = [
    ("'%05d' % 42", "00042"),
    ("'%s-%s' % ('a', 'b')", "a-b"),
    ("'{:>5}'.format('a')", "    a"),
    ("'{0}{0}'.format('ab')", "abab"),
    ("'ab' * 3", "ababab"),
    ("[1] * 3", [1, 1, 1]),
    ("2 ** 10", 1024),
    ("10 ** 4299 > 0", True),
    ("'x'.center(5, '*')", "**x**"),
    ("'a\tb'.expandtabs(4)", "a   b"),
    ("['a', 'b'] | join('-')", "a-b"),
    ("[[1], [2, 3]] | sum(start=[])", [1, 2, 3]),
    ("[1, 2, 3] | sum", 6),
    ("'aa' | replace('a', 'bc')", "bcbc"),
    ("'x' * 999_999 ~ 'y'", "x" * 999_999 + "y"),
]


@pytest.mark.parametrize(("expression", "expected"), ORDINARY, ids=[e for e, _ in ORDINARY])
def test_ordinary_templates_still_work(expression: str, expected: Any) -> None:
    assert _evaluate(expression, {})({}) == expected


def test_sum_of_lists_is_linear_not_quadratic() -> None:
    # Python's sum() copies the list so far for each item: 30,000 items would be ~450 million copies.
    parts = [[index] for index in range(30_000)]
    assert _evaluate("parts | sum(start=[])", {"parts": None})({"parts": parts}) == list(range(30_000))


def _text(source: str) -> Callable[[dict[str, Any]], Any]:
    problems: list[Any] = []
    renderer = compile_tree(source, {"s": None, "l": None}, problems, "/t")
    assert not problems, problems
    return renderer


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("{{ s }}" * 3, {"s": "x" * 400_000}),  # each part is fine; together they are not
        ("{% for a in l %}{{ s }}{% endfor %}", {"s": "x" * 1000, "l": list(range(2000))}),
        ("{% set t = s ~ s %}{{ t ~ t }}", {"s": "x" * 300_000}),
        ("{% filter upper %}{{ s }}{{ s }}{% endfilter %}", {"s": "x" * 600_000}),
    ],
)
def test_text_templates_are_bounded_as_a_whole(source: str, names: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"template limit: a value may be at most 1,000,000 characters"):
        _text(source)(names)


def test_loops_are_bounded_per_rendering() -> None:
    nested = "{% for a in l %}{% for b in l %}{% for c in l %}{% endfor %}{% endfor %}{% endfor %}done"
    renderer = _text(nested)
    assert renderer({"l": [1] * 40, "s": ""}) == "done"  # 65,640 iterations: within the limit
    with pytest.raises(Exception, match=f"loops may run at most {MAX_ITERATIONS:,} times"):
        renderer({"l": [1] * 1000, "s": ""})
    assert renderer({"l": [1] * 40, "s": ""}) == "done"  # the budget is per rendering, not per process


@pytest.mark.parametrize(
    ("source", "statement"),
    [
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "`{% macro %}`"),
        ("{% include 'x' %}", "`{% include %}`"),
        ("{% import 'x' as y %}", "`{% import %}`"),
        ("{% extends 'x' %}", "`{% extends %}`"),
        ("{% block b %}{% endblock %}", "`{% block %}`"),
        ("{% for x in s recursive %}{{ loop(x) }}{% endfor %}", "recursive loops"),
    ],
)
def test_statements_that_recurse_or_load_templates_are_refused(source: str, statement: str) -> None:
    problems: list[Any] = []
    compile_tree(source, {"s": None}, problems, "/t")
    assert len(problems) == 1 and statement in problems[0].problem.message


def test_deeply_nested_template_is_a_located_error() -> None:
    problems: list[Any] = []
    compile_tree("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", {}, problems, "/t")
    assert len(problems) == 1 and "nested too deeply" in problems[0].problem.message


def _preset(tmp_path: Path, leaf: str) -> Path:
    fixture = Path(__file__).parent / "fixtures" / "base_preset.yaml"
    text = fixture.read_text().replace('who: "{{ email }}"', f"who: {leaf}")
    text = text.replace("../../schemas", str(fixture.parents[2] / "schemas"))
    (tmp_path / "preset.yaml").write_text(text)
    return tmp_path


def test_a_hostile_value_from_the_event_is_a_render_error_naming_the_field(tmp_path: Path) -> None:
    preset = load_preset(_preset(tmp_path, '"{{ email * (event.times | int) }}"'))
    settings = preset.resolve_settings({"token": "t", "list": "l"}, environ={})
    event = {"type": "identify", "traits": {"email": "a@example.com"}, "times": BIG}
    with pytest.raises(RenderError) as caught:
        render(preset, event, settings)
    assert caught.value.field == "/mappings/0/fields/who"
    assert caught.value.location is not None and caught.value.location.line == 30
    assert "template limit: a value may be at most 1,000,000 characters" in str(caught.value)


def test_a_request_past_the_request_limit_is_refused(tmp_path: Path) -> None:
    # 40 leaves of 900,000 characters each: every value is within MAX_TEXT, the request is not.
    leaves = "\n".join(
        f"      k{index}: \"{{{{ fields.who * 900000 if event.big else 'x' }}}}\"" for index in range(40)
    )
    fixture = Path(__file__).parent / "fixtures" / "base_preset.yaml"
    schema = tmp_path / "open.schema.json"
    schema.write_text('{"type": "object"}')
    text = fixture.read_text().replace("      Action: addforce", "      Action: addforce\n" + leaves)
    text = text.replace("../../schemas/mailjet/managecontact.schema.json", str(schema))
    (tmp_path / "preset.yaml").write_text(text)
    preset = load_preset(tmp_path)
    assert preset.steps[0].check_size
    settings = preset.resolve_settings({"token": "t", "list": "l"}, environ={})
    assert render(preset, {"type": "identify", "traits": {"email": "a"}, "big": False}, settings).action == "send"
    with pytest.raises(RenderError, match="request limit: a rendered request may be at most 32,000,000 characters"):
        render(preset, {"type": "identify", "traits": {"email": "a"}, "big": True}, settings)


def test_bundled_presets_need_no_size_check_at_render_time() -> None:
    for name in ("mailgun", "mailjet", "sendgrid", "brevo", "klaviyo", "webhook"):
        assert not any(step.check_size for step in load_preset(name).steps), name


def test_limits_are_what_the_readme_says() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for figure in (f"{MAX_TEXT:,}", "4,300", f"{MAX_ITERATIONS:,}", "32,000,000"):
        assert figure in readme, figure
