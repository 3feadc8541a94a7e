"""The package's architecture, read from its imports: stages point one way, nothing cycles.

Each module of ``relay`` belongs to a stage (its subpackage, or a top-level
module). A stage may import only stages of a lower rank, never a sibling of the
same rank or one above it, and no set of modules may import each other in a
cycle. Imports under ``if TYPE_CHECKING:`` are annotations only and not counted.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import relay
from tests.paths import ROOT

#: Lower ranks are imported by higher ones, never the reverse.
RANKS = {
    "errors": 0,
    "jsonpointer": 0,
    "bundled": 0,
    "expr": 1,
    "preset": 2,
    "runtime": 3,
    "delivery": 4,
    "authoring": 4,
    "fakes": 4,
    "demo": 5,
    "service": 5,
    "studio": 5,
    "": 6,  # relay/__init__.py: the public API
    "cli": 7,
    "__main__": 8,
}
PACKAGE = Path(relay.__file__).parent
SOURCES = {"relay": PACKAGE, "relay.fakes": ROOT / "fakes"}
MAX_LINES = 400


def _modules() -> Iterator[tuple[str, Path]]:
    for prefix, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            if "fakes" in path.relative_to(folder).parts and prefix == "relay":
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join([prefix, *parts]), path


MODULES = dict(_modules())


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> set[str]:
    """Every relay module ``module`` imports at run time (resolved to a module, not a name)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_stage_has_a_rank() -> None:
    assert {stage(m) for m in MODULES} <= set(RANKS), {stage(m) for m in MODULES} - set(RANKS)


def test_arrows_point_down_only() -> None:
    wrong = []
    for module, imported in GRAPH.items():
        for target in imported:
            here, there = stage(module), stage(target)
            if here != there and RANKS[there] >= RANKS[here]:
                wrong.append(f"{module} ({here}, rank {RANKS[here]}) imports {target} ({there}, rank {RANKS[there]})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def _cycle() -> list[str] | None:
    done: set[str] = set()
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(GRAPH[node]):
            found = walk(target)
            if found:
                return found
        path.pop()
        done.add(node)
        return None

    for start in sorted(GRAPH):
        found = walk(start)
        if found:
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by job (limit {MAX_LINES})"


def test_nothing_imports_the_source_folder_names() -> None:
    """`engine` and top-level `fakes` are folder names, not modules: everything imports `relay`."""
    offenders = []
    for folder in ("engine", "fakes", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in ("engine", "fakes")]
    assert not offenders, offenders


def test_the_top_level_modules_are_not_importable() -> None:
    """Installed, relay puts only `relay` on the path (pytest adds the checkout for bench/)."""
    for name in ("engine", "fakes"):
        spec_paths = [p for p in sys.path if (Path(p or ".") / name / "__init__.py").is_file()]
        assert all(Path(p or ".").resolve() == ROOT for p in spec_paths), spec_paths
