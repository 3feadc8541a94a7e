"""relay golden --coverage: what goldens exercise, measured on a fixture and on every bundled preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from relay import load_preset
from relay.authoring.coverage import measure
from relay.authoring.golden import discover_cases
from relay.cli import main
from tests.paths import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "coverage"
EXPECTATIONS = YAML(typ="safe").load((FIXTURE / "expectations.yaml").read_text(encoding="utf-8"))
PRESETS = sorted(p.parent.name for p in (ROOT / "presets").glob("*/preset.yaml"))


@pytest.mark.parametrize(
    "expectation", EXPECTATIONS, ids=lambda e: "+".join(e["cases"]) if e["cases"] != "all" else "all"
)
def test_coverage_reports_exactly_what_no_golden_exercises(expectation: dict[str, Any]) -> None:
    preset = load_preset(FIXTURE / "shop")
    cases = discover_cases("shop", FIXTURE)
    if expectation["cases"] != "all":
        cases = [c for c in cases if c.name in expectation["cases"]]
        assert len(cases) == len(expectation["cases"])
    report = measure(preset, cases)
    assert not report.errors
    assert sorted(f"{g.kind} {g.pointer}" for g in report.gaps) == sorted(expectation["gaps"])


@pytest.mark.parametrize("name", PRESETS)
def test_every_bundled_preset_is_fully_covered_by_its_goldens(name: str) -> None:
    report = measure(load_preset(ROOT / "presets" / name), discover_cases(name))
    assert report.lines() == [], "\n".join(report.lines())
    assert {"mapping", "rule", "request"} <= {item.kind for item in report.items.values()}


def test_gaps_are_located_in_the_file_that_wrote_them() -> None:
    preset = load_preset(FIXTURE / "shop")
    report = measure(preset, [c for c in discover_cases("shop", FIXTURE) if c.name == "order"])
    lines = report.lines()
    text = "\n".join(lines)
    assert (
        "tests/fixtures/coverage/shop/preset.yaml:7:31: /selectors/nickname/1: fallback 'context.traits.nickname'"
        in text
    )
    assert "shop/preset.yaml:8:9: /selectors/city#2: alternative 2 of 'traits.city || context.traits.city" in text
    assert "shop/preset.yaml:19:5: /mappings/0: mapping 'identified' is never sent through by a golden" in text


def test_a_case_that_fails_to_render_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("settings: {}\nevent: {type: identify, traits: {email: a@example.com}}\n")
    from relay.authoring.golden import load_case

    report = measure(load_preset(FIXTURE / "shop"), [load_case(broken, "shop")])
    assert report.errors and "token" in report.errors[0]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_the_command_reports_and_strict_fails_on_gaps(tmp_path: Path) -> None:
    code, out = run("golden", "--presets", str(FIXTURE), "--coverage", "--strict")
    assert code == 0 and "coverage shop: 32 of 32 covered by 6 cases" in out
    copy = tmp_path / "shop"
    (copy / "golden").mkdir(parents=True)
    (copy / "preset.yaml").write_text((FIXTURE / "shop" / "preset.yaml").read_text())
    for name in ("identify_granted.yaml", "order.yaml"):
        (copy / "golden" / name).write_text((FIXTURE / "shop" / "golden" / name).read_text())
    code, out = run("golden", "--presets", str(tmp_path), "--coverage")
    assert code == 0 and "not covered" in out and "mapping 'unmapped' is never taken by a golden" in out
    code, _ = run("golden", "--presets", str(tmp_path), "--coverage", "--strict")
    assert code == 1
    code, out = run("golden", "--presets", str(tmp_path), "--strict")
    assert code == 2 and "--strict goes with --coverage" in out


def test_the_guide_shows_what_the_command_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/authoring.md §6 shows the coverage of a fresh `relay new`: it must stay true."""
    guide = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    block = guide.split("$ relay golden --presets my-presets --coverage acme_crm", 1)[1].split("```", 1)[0]
    shown = [line.strip() for line in block.splitlines()[1:] if line.strip() and line.strip() != "..."]
    monkeypatch.chdir(tmp_path)
    assert run("new", "acme_crm", "--presets", "my-presets")[0] == 0
    _code, out = run("golden", "--presets", "my-presets", "--coverage", "acme_crm")
    printed = [line.strip() for line in out.splitlines()]
    for line in shown:
        tail = line.split(".../", 1)[-1]
        assert any(p.endswith(tail) for p in printed), f"the guide shows {line!r}; relay prints:\n{out}"
