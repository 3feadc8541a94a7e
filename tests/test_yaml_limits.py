"""Hostile files: YAML bombs, huge or deep files, and bytes that are not UTF-8.

Every YAML file relay reads (presets, settings, golden cases, demo configs) is
bounded by relay.preset.source's limits, each refused at once with the file, line
and column; bytes that are not UTF-8 are named by their offset.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay import PresetErrors, SettingsError, load_preset, load_settings_file
from relay.cli import main
from relay.errors import GoldenError, PresetError
from relay.preset.source import (
    MAX_FILE_BYTES,
    MAX_YAML_ALIASES,
    MAX_YAML_DEPTH,
    MAX_YAML_EXPANDED,
    MAX_YAML_VALUES,
    _cache_file,
    load_yaml,
)

BASE = Path(__file__).parent / "fixtures" / "base_preset.yaml"


def laughs(levels: int = 10) -> str:
    """The classic anchor bomb: 10 ** levels values from a few hundred bytes."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# (name, YAML text, the message, the line:col it must point at)
HOSTILE = [
    ("billion_laughs", laughs(), f"at most {MAX_YAML_EXPANDED:,} values once its aliases are expanded", "5:5"),
    (
        "too_many_values",
        "a: [" + ",".join(["1"] * (MAX_YAML_VALUES + 1)) + "]\n",
        f"at most {MAX_YAML_VALUES:,} values",
        "1:",
    ),
    (
        "too_many_aliases",
        "a: &a 1\nb: [" + ",".join(["*a"] * (MAX_YAML_ALIASES + 1)) + "]\n",
        f"at most {MAX_YAML_ALIASES:,} aliases",
        "2:",
    ),
    (
        "too_deep",
        "a: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n",
        f"nest at most {MAX_YAML_DEPTH}",
        "1:",
    ),
    ("nested_far_too_deep", "a: " + "[" * 100_000 + "]" * 100_000 + "\n", f"nest at most {MAX_YAML_DEPTH}", "1:"),
    ("too_big", "a: '" + "x" * MAX_FILE_BYTES + "'\n", f"at most {MAX_FILE_BYTES:,} bytes", "1:1"),
]


@pytest.mark.parametrize(("name", "text", "message", "where"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_yaml_is_refused_with_a_located_error(
    tmp_path: Path, name: str, text: str, message: str, where: str
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(PresetError) as caught:
        load_yaml(path)
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{path}:{where}")


@pytest.mark.parametrize(("name", "text", "message", "where"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_settings_file_is_a_settings_error_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str, where: str
) -> None:
    path = tmp_path / f"{name}.settings.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings_file(path)
    assert str(caught.value).startswith(f"settings file {path} cannot be used:")
    assert f"{path}:{where}" in str(caught.value) and message in str(caught.value)


def test_validate_refuses_a_bombed_preset_and_render_a_bombed_settings_file(tmp_path: Path) -> None:
    preset = tmp_path / "bomb"
    preset.mkdir()
    (preset / "preset.yaml").write_text(
        laughs() + BASE.read_text().replace("../../schemas", str(BASE.parents[2] / "schemas"))
    )
    result = CliRunner().invoke(main, ["validate", str(preset)])
    assert result.exit_code == 1
    assert f"{preset / 'preset.yaml'}:5:5: /a4/7: YAML limit:" in result.output
    settings = tmp_path / "bomb.settings.yaml"
    settings.write_text(laughs() + "token: t\nlist: l\n")
    event = tmp_path / "event.json"
    event.write_text('{"type": "identify", "traits": {"email": "a@example.com"}}')
    ok = tmp_path / "ok"
    ok.mkdir()
    (ok / "preset.yaml").write_text(BASE.read_text().replace("../../schemas", str(BASE.parents[2] / "schemas")))
    result = CliRunner().invoke(main, ["render", str(ok), "--event", str(event), "--settings", str(settings)])
    assert result.exit_code == 2
    assert f"settings file {settings}" in result.output and "YAML limit" in result.output


LATIN1 = "caf\xe9".encode("latin-1")


def _not_utf8(text: str) -> bytes:
    """``text`` with its first 'CAFE' written in Latin-1."""
    head, tail = text.split("CAFE", 1)
    return head.encode() + LATIN1 + tail.encode()


def test_a_preset_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    text = BASE.read_text().replace("title: Tiny", "title: Tiny CAFE")
    (tmp_path / "preset.yaml").write_bytes(_not_utf8(text))
    offset = text.index("CAFE") + 3
    with pytest.raises(PresetErrors) as caught:
        load_preset(tmp_path)
    message = str(caught.value.errors[0])
    assert message.startswith(f"{tmp_path / 'preset.yaml'}:4:")
    assert f"not UTF-8 text: byte 0xe9 at offset {offset}" in message


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_settings_file_that_is_not_utf8_names_the_file_and_byte(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"s{suffix}"
    text = '{"token": "CAFE"}' if suffix == ".json" else "token: CAFE\n"
    path.write_bytes(_not_utf8(text))
    with pytest.raises(SettingsError) as caught:
        load_settings_file(path)
    assert f"settings file {path} cannot be used" in str(caught.value)
    assert f"byte 0xe9 at offset {text.index('CAFE') + 3}" in str(caught.value)


def test_a_json_settings_file_nested_too_deeply_is_a_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SettingsError, match="nested too deeply"):
        load_settings_file(path)


def test_a_golden_case_that_is_not_utf8_is_a_golden_error(tmp_path: Path) -> None:
    from relay.authoring.golden import load_case

    path = tmp_path / "case.yaml"
    path.write_bytes(_not_utf8("event: {type: identify, traits: {name: CAFE}}\n"))
    with pytest.raises(GoldenError, match=r"case.yaml:1:\d+: /: not UTF-8 text: byte 0xe9 at offset 42"):
        load_case(path, "tiny")


@pytest.mark.parametrize("command", [["demo", "--config"], ["fake", "mailgun", "--config"]])
def test_a_demo_or_fake_config_that_is_not_utf8_is_a_clear_error(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "demo.yaml"
    path.write_bytes(_not_utf8("events: CAFE.ndjson\n"))
    result = CliRunner().invoke(main, [*command, str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:1:" in result.output and "not UTF-8 text: byte 0xe9 at offset 11" in result.output
    assert "Traceback" not in result.output


def test_the_parse_cache_never_holds_a_document_past_the_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RELAY_NO_CACHE", raising=False)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    for _ in range(2):  # refused the second time too: nothing was cached for it
        with pytest.raises(PresetError, match="YAML limit"):
            load_yaml(bomb)
    cache = _cache_file(bomb.read_text())
    assert cache is not None and not cache.exists()
    fine = tmp_path / "fine.yaml"
    fine.write_text(laughs(3))  # 1,000 values through aliases: within the limits, and cached
    assert load_yaml(fine).data == load_yaml(fine).data
    entry = _cache_file(fine.read_text())
    assert entry is not None and entry.exists()
    assert json.loads(entry.read_text())["data"]["a2"][9][9][9] == "lol"


def test_the_cache_key_covers_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # An entry written under other limits (or another cache format) is never read.
    from relay.preset import source

    key = source._cache_file("a: 1\n")
    monkeypatch.setattr(source, "_CACHE_FORMAT", source._CACHE_FORMAT + "-other-limits")
    assert source._cache_file("a: 1\n") != key
    assert str(MAX_YAML_EXPANDED) in source._CACHE_FORMAT
