"""Memory and the golden suite: peak RSS streaming many events, and the goldens' wall time."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relay.authoring.golden import discover_cases

from .common import PRESETS, ROOT, Row, child_env, row

__all__ = ["figure_goldens", "figure_memory"]


def _peak_rss_mb(count: int) -> float:
    """Peak RSS of `relay send --dry-run` fed `count` generated events on stdin (KiB from getrusage)."""
    script = (
        "import resource, subprocess, sys\n"
        "gen = subprocess.Popen([sys.executable, '-m', 'bench.events', '--count', sys.argv[1]],"
        " stdout=subprocess.PIPE)\n"
        "run = subprocess.run([sys.executable, '-m', 'relay', 'send', 'mailjet', '-', '--settings', sys.argv[2],"
        " '--dry-run', '--no-progress', '--concurrency', '4'], stdin=gen.stdout, capture_output=True)\n"
        "gen.wait()\n"
        "assert run.returncode == 0, run.stdout[-2000:]\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        settings = Path(scratch) / "s.json"
        settings.write_text(json.dumps({"api_key": "pub", "secret_key": "sec", "list_id": 1}))
        out = subprocess.run(
            [sys.executable, "-c", script, str(count), str(settings)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            env=child_env(),
        )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def figure_memory(quick: bool) -> list[Row]:
    # Both past what a run may hold at once: the batcher's buffer (max_pending: 10,000 events
    # for Mailjet, which merges a contact's events) plus the waves in flight (concurrency x
    # 5,000). Below that bound peak RSS grows with the stream by design; past it, it must not.
    small, large = (40_000, 80_000) if quick else (100_000, 1_000_000)
    _peak_rss_mb(100)  # fills the bytecode cache: compiling would add to the first run's peak
    start = time.perf_counter()
    base = _peak_rss_mb(small)
    peak = _peak_rss_mb(large)
    seconds = time.perf_counter() - start
    return [
        row(
            f"memory, {large:,} events dry-run",
            f"{peak:.1f} MB peak RSS",
            f"{base:.1f} MB at {small:,} events",
            ratio=peak / base,
            goal="flat (<= 1.10x)",
            met=peak / base <= 1.10,
            note=f"{seconds:.0f} s for both runs",
        )
    ]


def figure_goldens(quick: bool) -> list[Row]:
    count = sum(len(discover_cases(name)) for name in PRESETS)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_golden.py"]
    times = []
    for _ in range(2 if quick else 4):  # the first run fills the bytecode cache; the best run counts
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=child_env())
        times.append(time.perf_counter() - start)
    wall = min(times[1:])
    return [
        row(
            "golden suite",
            f"{wall:.2f} s",
            f"{count} cases",
            ratio=None,
            goal="report",
            met=None,
            note=f"{wall / count * 1000:.1f} ms per case incl. pytest start (best of {len(times) - 1})",
        )
    ]
