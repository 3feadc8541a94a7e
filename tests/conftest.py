"""Shared fixtures, and the --update-goldens switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import CompiledPreset, load_preset
from relay.preset.locate import resolve_preset
from tests.paths import ROOT


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", help="rewrite golden expectations (keeps comments)")


@pytest.fixture(scope="session")
def presets() -> dict[str, CompiledPreset]:
    return {p.parent.name: load_preset(p) for p in sorted((ROOT / "presets").glob("*/preset.yaml"))}


@pytest.fixture(scope="session")
def mailgun(presets: dict[str, CompiledPreset]) -> CompiledPreset:
    return presets["mailgun"]


@pytest.fixture(scope="session")
def mailjet(presets: dict[str, CompiledPreset]) -> CompiledPreset:
    return presets["mailjet"]


@pytest.fixture(scope="session")
def sendgrid(presets: dict[str, CompiledPreset]) -> CompiledPreset:
    return presets["sendgrid"]


@pytest.fixture(scope="session")
def brevo(presets: dict[str, CompiledPreset]) -> CompiledPreset:
    return presets["brevo"]


@pytest.fixture(scope="session")
def klaviyo(presets: dict[str, CompiledPreset]) -> CompiledPreset:
    return presets["klaviyo"]


@pytest.fixture(scope="session")
def webhook(presets: dict[str, CompiledPreset]) -> CompiledPreset:
    return presets["webhook"]


@pytest.fixture()
def repo_root() -> Path:
    return ROOT


def preset_path(name: str) -> Path:
    return resolve_preset(name)
