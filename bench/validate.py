"""``relay validate`` wall time, interpreter start included, against ``python -c pass``.

relay keeps a YAML parse cache keyed by a hash of each file's text, so a second validate of
unchanged presets skips ruamel's pure-Python parser. Both figures are reported: warm (the cache
holds every preset, as on a developer's machine) and cold (an empty cache, as on a fresh CI
machine or after every edit). Each run gets its own cache folder through ``RELAY_CACHE_DIR``:
the bench never reads or writes the user's own cache. Commands are interleaved round by round.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relay.bundled import presets_dir, schemas_dir

from .common import PRESETS, ROOT, Row, child_env, plural, row

__all__ = ["figure_validate", "generated_presets"]


@contextmanager
def generated_presets(count: int) -> Iterator[Path]:
    """A folder of ``count`` presets, each the Mailjet preset under another name."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "presets"
        source = (presets_dir() / "mailjet" / "preset.yaml").read_text(encoding="utf-8")
        for index in range(count):
            folder = root / f"gen{index:02d}"
            folder.mkdir(parents=True)
            text = source.replace("name: mailjet", f"name: gen{index:02d}")
            text = text.replace("../../schemas/", f"{schemas_dir().as_posix()}/")  # every request schema
            (folder / "preset.yaml").write_text(text, encoding="utf-8")
        yield root


def _seconds(command: list[str], cache: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=child_env(RELAY_CACHE_DIR=str(cache)))
    return time.perf_counter() - start


def figure_validate(quick: bool) -> list[Row]:
    rounds = 1 if quick else 7
    python = [sys.executable, "-c", "pass"]
    bundled = [sys.executable, "-m", "relay", "validate"]
    with generated_presets(50) as folder, tempfile.TemporaryDirectory() as scratch:
        fifty = [*bundled, "--presets", str(folder)]
        warm = Path(scratch) / "warm"
        for command in (bundled, fifty):  # fills the warm cache, and Python's bytecode cache
            _seconds(command, warm)
        times: dict[str, list[float]] = {
            key: [] for key in ("python", "bundled", "bundled cold", "fifty", "fifty cold")
        }
        for index in range(rounds):
            cold = Path(scratch) / f"cold-{index}"
            times["python"].append(_seconds(python, warm))
            times["bundled"].append(_seconds(bundled, warm))
            times["bundled cold"].append(_seconds(bundled, cold / "bundled"))
            times["fifty"].append(_seconds(fifty, warm))
            times["fifty cold"].append(_seconds(fifty, cold / "fifty"))
    median = {key: statistics.median(values) for key, values in times.items()}
    base = f"{median['python']:.3f} s (python -c pass)"
    rows = []
    for key, what, goal, limit in (
        ("bundled", f"{len(PRESETS)} bundled presets", "<= 0.5 s wall", 0.5),
        ("fifty", "50 generated presets", "< 1 s wall", 1.0),
    ):
        for cache in ("warm", "cold"):
            seconds = median[key if cache == "warm" else f"{key} cold"]
            spread = times[key if cache == "warm" else f"{key} cold"]
            met = seconds <= limit if limit == 0.5 else seconds < limit
            rows.append(
                row(
                    f"validate, {what}, {cache} YAML cache",
                    f"{seconds:.3f} s",
                    base,
                    ratio=seconds / median["python"],
                    spread=f"{min(spread):.3f}-{max(spread):.3f} s",
                    goal=goal,
                    met=met,
                    note=f"median of {plural(rounds, 'run')}, interpreter start included"
                    + ("; an empty cache folder each run" if cache == "cold" else ""),
                )
            )
    return rows
