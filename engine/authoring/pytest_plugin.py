"""A pytest plugin (entry point ``relay``) that runs a repository's preset goldens.

Inert until configured. In a repository of your own presets, laid out as
``<dir>/<preset>/preset.yaml`` with cases in ``<dir>/<preset>/golden/*.yaml``::

    # pytest.ini / pyproject [tool.pytest.ini_options]
    relay_presets = presets

then plain ``pytest`` collects one test per golden case. ``--relay-update-goldens``
rewrites expectations (keeping comments), like ``relay golden --update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ..errors import GoldenError, GoldenMismatch, PresetErrors
from ..preset.compiler import load_preset
from ..preset.model import CompiledPreset
from .golden import load_case, run_case, update_case

__all__ = ["GoldenFile", "GoldenItem"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("relay", "relay preset goldens")
    group.addoption("--relay-presets", default=None, help="directory of relay presets whose goldens to run")
    group.addoption("--relay-update-goldens", action="store_true", help="rewrite relay golden expectations")
    parser.addini("relay_presets", "directory of relay presets whose goldens to run", default="")


def _presets_root(config: pytest.Config) -> Path | None:
    chosen = config.getoption("--relay-presets") or config.getini("relay_presets")
    if not chosen:
        return None
    root = Path(str(chosen))
    return root if root.is_absolute() else (config.rootpath / root)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    root = _presets_root(parent.config)
    if root is None or file_path.suffix != ".yaml" or file_path.parent.name != "golden":
        return None
    try:
        file_path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    if not (file_path.parent.parent / "preset.yaml").is_file():
        return None
    return GoldenFile.from_parent(parent, path=file_path)


@cache
def _preset(path: Path) -> CompiledPreset:
    return load_preset(path)


class GoldenFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield GoldenItem.from_parent(self, name=self.path.stem)


class GoldenItem(pytest.Item):
    def runtest(self) -> None:
        preset_file = self.path.parent.parent / "preset.yaml"
        try:
            preset = _preset(preset_file)
            case = load_case(self.path, preset.name)
        except (PresetErrors, GoldenError) as exc:
            raise GoldenMismatch(str(exc)) from None
        result = run_case(case, preset)
        if result.ok:
            return
        if self.config.getoption("--relay-update-goldens"):
            update_case(case, result.actual)
            return
        raise GoldenMismatch(result.diff())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GoldenMismatch):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"relay golden {self.path.parent.parent.name}/{self.name}"
