"""The authoring kit: relay new, relay docs, golden --add, errors that teach, CI integration."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from relay import load_preset
from relay.authoring.docs import render_docs
from relay.cli import main
from tests.paths import ROOT

pytest_plugins = ["pytester"]

PRESETS = sorted(p.parent.name for p in (ROOT / "presets").glob("*/preset.yaml"))
BROKEN = "tests/fixtures/broken"
TEACHING = "tests/fixtures/teaching"


def relay(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def new_repo(tmp_path: Path, name: str = "acme_crm") -> Path:
    presets = tmp_path / "presets"
    code, out = relay("new", name, "--presets", str(presets))
    assert code == 0, out
    return presets


def test_new_scaffold_validates_and_its_goldens_pass(tmp_path: Path) -> None:
    presets = new_repo(tmp_path)
    folder = presets / "acme_crm"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "golden", "preset.yaml", "request.schema.json"]
    assert (folder / "preset.yaml").read_text().startswith("# yaml-language-server: $schema=")
    assert relay("validate", "--presets", str(presets))[0] == 0
    code, out = relay("golden", "--presets", str(presets))
    assert code == 0 and "goldens: 2 passed, 0 failed" in out
    code, out = relay("docs", "acme_crm", "--presets", str(presets))
    assert code == 0 and out.startswith("# Acme Crm")
    code, out = relay("new", "acme_crm", "--presets", str(presets))
    assert code == 2 and "already exists" in out
    code, out = relay("new", "Bad-Name", "--presets", str(presets))
    assert code == 2 and "lower-case identifiers" in out


@pytest.mark.parametrize("name", PRESETS)
def test_generated_preset_pages_are_current(name: str) -> None:
    page = ROOT / "docs" / "presets" / f"{name}.md"
    assert page.read_text(encoding="utf-8") == render_docs(load_preset(ROOT / "presets" / name)), (
        f"{page} is stale: run `relay docs --out-dir docs/presets`"
    )
    assert f"docs/presets/{name}.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_docs_check_flags_a_stale_page(tmp_path: Path) -> None:
    (tmp_path / "mailgun.md").write_text("old")
    code, out = relay("docs", "mailgun", "--out-dir", str(tmp_path), "--check")
    assert code == 1 and "stale" in out


def test_golden_add_records_a_case_and_refuses_duplicates(tmp_path: Path) -> None:
    presets = new_repo(tmp_path)
    event = tmp_path / "vip.json"
    event.write_text(
        json.dumps(
            {
                "type": "identify",
                "traits": {"email": "VIP@example.com", "first_name": "Vi"},
                "context": {"consent": {"canonical": {"marketing": False}}},
            }
        )
    )
    code, out = relay(
        "golden", "--add", "acme_crm", "--event", str(event), "--name", "vip_withdrawn", "--presets", str(presets)
    )
    assert code == 0, out
    assert '"subscribed": false' in out and "recorded" in out
    recorded = presets / "acme_crm" / "golden" / "vip_withdrawn.yaml"
    assert recorded.exists()
    assert relay("golden", "--presets", str(presets))[0] == 0
    code, out = relay(
        "golden", "--add", "acme_crm", "--event", str(event), "--name", "vip_withdrawn", "--presets", str(presets)
    )
    assert code == 1 and "duplicate golden name 'vip_withdrawn'" in out and "--update" in out


# The ten most common authoring mistakes: fixture, command, and what the message must say
# (where, what, and what to write instead). Each message also appears in docs/authoring.md.
MISTAKES = [
    (
        "misspelled key",
        ["validate", f"{BROKEN}/typo_in_key.yaml"],
        ["typo_in_key.yaml:37:5: /requests/0/shema: unknown key 'shema'", "did you mean 'schema'?"],
    ),
    (
        "bad JMESPath",
        ["validate", f"{BROKEN}/bad_jmespath.yaml"],
        ["bad_jmespath.yaml:17:25: /selectors/email/1: invalid JMESPath expression", "paths look like `traits.email`"],
    ),
    (
        "unknown Jinja filter",
        ["validate", f"{BROKEN}/unknown_filter.yaml"],
        ["unknown_filter.yaml:31:12: /mappings/0/fields/who: unknown filter 'lowercase'", "did you mean 'lower'?"],
    ),
    (
        "undefined name",
        ["validate", f"{BROKEN}/undefined_name.yaml"],
        ["undefined_name.yaml:31:12: /mappings/0/fields/who: undefined name 'emial'", "did you mean 'email'?"],
    ),
    (
        "setting used but not declared",
        ["validate", f"{BROKEN}/undeclared_setting.yaml"],
        [
            "undeclared_setting.yaml:36:10: /requests/0/url: 'settings.list_id' is not declared",
            "Or declare 'list_id' under `settings:`",
        ],
    ),
    (
        "wrong type",
        ["validate", f"{BROKEN}/wrong_type.yaml"],
        ["wrong_type.yaml:12:13: /settings/token/secret: 'yes-please' is not of type 'boolean'", "write true or false"],
    ),
    (
        "body fails its own request schema in a golden",
        ["golden", "--presets", TEACHING, "body_fails_schema"],
        [
            "body_fails_schema/golden/identify.yaml:3:1: /event: rendering this case failed",
            "body_fails_schema/preset.yaml:39:15: /requests/0/body/Action: the template that produced it",
            "change the preset's template, or its request schema",
        ],
    ),
    (
        "unreachable rule",
        ["validate", f"{BROKEN}/unreachable_rule.yaml"],
        [
            "unreachable_rule.yaml:22:5: /rules/1: rule 'granted' can never fire",
            "give the earlier rule a `when`, or move this rule above it",
        ],
    ),
    (
        "duplicate golden name",
        ["golden", "--presets", TEACHING, "duplicate_golden"],
        ["duplicate_golden/golden/new_case.yaml:1:1: duplicate golden name", "rename one"],
    ),
    (
        "secret written inline",
        ["validate", f"{BROKEN}/inline_secret.yaml"],
        [
            "inline_secret.yaml:32:29: /auth/token: a credential is written inline in the preset",
            "declare a `secret: true` setting and write `{{ settings.<name> }}` here",
        ],
    ),
]


@pytest.mark.parametrize(("args", "fragments"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_errors_that_teach(args: list[str], fragments: list[str]) -> None:
    code, out = relay(*args)
    assert code == 1
    for fragment in fragments:
        assert fragment in out, out
    guide = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    assert fragments[0] in guide, f"docs/authoring.md does not show: {fragments[0]}"


def test_every_preset_has_the_editor_schema_line_and_the_schema_explains_keys() -> None:
    for name in PRESETS:
        first = (ROOT / "presets" / name / "preset.yaml").read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/preset.schema.json"
    schema = json.loads((ROOT / "schemas" / "preset.schema.json").read_text())
    for key, spec in schema["properties"].items():
        target = schema["$defs"][spec["$ref"].rsplit("/", 1)[1]] if "$ref" in spec else spec
        assert target.get("title") or target.get("description"), f"schema key {key} is unexplained"


def _user_repo(tmp_path: Path) -> Path:
    """A repository of someone else's presets: presets/<name>/{preset.yaml,golden/}."""
    repo = tmp_path / "their-repo"
    repo.mkdir()
    new_repo(repo)
    return repo


def test_pre_commit_hooks_run_against_a_user_repository(tmp_path: Path) -> None:
    repo = _user_repo(tmp_path)
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"relay-validate", "relay-golden"}
    for hook in hooks:
        command = shlex.split(hook["entry"])
        assert command[0] == "relay"
        run = subprocess.run(
            [sys.executable, "-m", "relay", *command[1:], "--presets", "presets"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    broken = repo / "presets" / "acme_crm" / "preset.yaml"
    broken.write_text(broken.read_text().replace("    method: POST", "    methd: POST"))
    run = subprocess.run(
        [sys.executable, "-m", "relay", "validate", "--presets", "presets"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 1 and "unknown key 'methd'" in run.stdout


def test_relay_presets_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _user_repo(tmp_path)
    monkeypatch.setenv("RELAY_PRESETS", str(repo / "presets"))
    code, out = relay("validate")
    assert code == 0 and "acme_crm/preset.yaml" in out and "mailgun" not in out


def test_pytest_plugin_runs_a_user_repositorys_goldens(tmp_path: Path, pytester: pytest.Pytester) -> None:
    repo = _user_repo(tmp_path)
    for path in (repo / "presets").rglob("*"):
        if path.is_file():
            target = pytester.path / path.relative_to(repo)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    pytester.makeini("[pytest]\nrelay_presets = presets\n")
    result = pytester.runpytest("presets")
    result.assert_outcomes(passed=2)
    case = pytester.path / "presets" / "acme_crm" / "golden" / "no_email.yaml"
    case.write_text(case.read_text().replace("reason: event has no email address", "reason: something else"))
    result = pytester.runpytest("presets")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['*-  "reason": "something else",*'])
    pytester.runpytest("presets", "--relay-update-goldens").assert_outcomes(passed=2)
    pytester.runpytest("presets").assert_outcomes(passed=2)
