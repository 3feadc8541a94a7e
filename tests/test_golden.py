"""Every golden case renders exactly to its expectation (what they cover: test_coverage.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import CompiledPreset
from relay.authoring.golden import GoldenCase, discover_cases, outcome_of, run_case, update_case
from tests.paths import ROOT

PRESET_NAMES = sorted(p.parent.name for p in (ROOT / "presets").glob("*/preset.yaml"))
CASES = [case for name in PRESET_NAMES for case in discover_cases(name)]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case: GoldenCase, presets: dict[str, CompiledPreset], request: pytest.FixtureRequest) -> None:
    result = run_case(case, presets[case.preset])
    if result.ok:
        return
    if request.config.getoption("--update-goldens"):
        update_case(case, result.actual)
        return
    pytest.fail(result.diff(), pytrace=False)


def test_every_preset_has_goldens_and_no_golden_dir_is_orphaned() -> None:
    # __pycache__ (tests/golden is a package for the wheel) and dot folders are not goldens.
    golden_dirs = {p.name for p in (ROOT / "tests" / "golden").iterdir() if p.is_dir() and p.name[0] not in "_."}
    assert golden_dirs == set(PRESET_NAMES)
    for name in PRESET_NAMES:
        assert discover_cases(name), f"{name} has no golden cases"


def test_a_missing_expectation_fails_unless_updating(tmp_path: Path, mailgun: CompiledPreset) -> None:
    source = ROOT / "tests/golden/mailgun/signed_up.yaml"
    text = source.read_text(encoding="utf-8").split("expected:")[0]
    case_file = tmp_path / "new_case.yaml"
    case_file.write_text("# reviewer note: keep me\n" + text, encoding="utf-8")
    from relay.authoring.golden import load_case

    case = load_case(case_file, "mailgun")
    result = run_case(case, mailgun)
    assert not result.ok
    assert "no `expected:` yet" in result.diff()
    update_case(case, result.actual)
    rewritten = case_file.read_text(encoding="utf-8")
    assert rewritten.startswith("# reviewer note: keep me\n")
    assert run_case(load_case(case_file, "mailgun"), mailgun).ok


def test_mismatch_shows_a_unified_diff(mailgun: CompiledPreset) -> None:
    case = discover_cases("mailgun")[0]
    tampered = GoldenCase(case.path, case.preset, case.name, case.settings, case.event, {"decision": "drop"})
    diff = run_case(tampered, mailgun).diff()
    assert diff.startswith("---") and "+++ rendered now" in diff


def test_goldens_never_read_the_environment(monkeypatch: pytest.MonkeyPatch, mailgun: CompiledPreset) -> None:
    monkeypatch.setenv("MAILGUN_API_KEY", "real-key-from-env")
    outcome = outcome_of(mailgun, {"list_address": "l@mg.example.com"}, {"type": "identify"})
    assert outcome["decision"] == "error" and "api_key" in outcome["error"]
