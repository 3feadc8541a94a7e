"""A corpus of broken presets, each with the located messages it must produce.

Each fixture carries its expectations in header comments::

    # expect: LINE:COL: /json/pointer: substring of the message
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import PresetErrors, load_preset

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "broken").glob("*.yaml"))


def expectations(path: Path) -> list[tuple[str, str, str]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect: "):
            location, pointer, substring = line.removeprefix("# expect: ").split(": ", 2)
            found.append((location, pointer, substring))
    return found


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_broken_preset_reports_every_located_error(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' lines"
    with pytest.raises(PresetErrors) as caught:
        load_preset(path)
    messages = [str(e) for e in caught.value.errors]
    for location, pointer, substring in expected:
        prefix = f"{path}:{location}: {pointer}: "
        assert any(m.startswith(prefix) and substring in m for m in messages), (
            f"expected {prefix}...{substring}... among:\n" + "\n".join(messages)
        )
    assert len(messages) == len(expected), "unexpected extra errors:\n" + "\n".join(messages)


def test_the_base_fixture_is_valid() -> None:
    load_preset(Path(__file__).parent / "fixtures" / "base_preset.yaml")


def test_the_corpus_covers_the_required_mistakes() -> None:
    names = {p.stem for p in FIXTURES}
    assert {
        "typo_in_key",
        "bad_jmespath",
        "bad_jinja_syntax",
        "unknown_filter",
        "undefined_name",
        "missing_without_as",
        "rule_without_effect",
        "mapping_after_catch_all",
        "wrong_type",
        "missing_section",
    } <= names
