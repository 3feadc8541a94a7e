"""``python -m bench``: relay's speed, as ratios against baselines measured in the same run.

Figures (``--only NAME``):
  render    per-event render + validate + encode per preset vs hand-written Python producing the
            same requests, on a repeated-contacts and a distinct-contacts stream
  sendpath  per-event send path of each read-before-write preset (decide, the read step, the write from its
            answer) vs the hand-written equivalent, both streams
  peers     the Mailgun identify mapping in RudderStack's and Segment's engines (Node) vs relay
  validate  `relay validate` wall time with a warm and a cold YAML cache vs `python -c pass`
  delivery  `relay send` to a local fake vs keep-alive http.client and vs requests, at 1/8/32
  memory    peak RSS streaming 1,000,000 events through `relay send --dry-run` vs 100,000 events
  goldens   wall time of the golden suite (reported, so growth shows)
  batch     per batched preset: HTTP requests per 10,000 events, client CPU per event and
            throughput at the vendor's rate limit, batched vs one request per event

relay and each baseline run in interleaved rounds; a ratio is the median of the rounds' ratios,
with their spread beside it. ``--quick`` shrinks every workload, for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .batching import figure_batching
from .common import ROOT, Row
from .delivery import figure_delivery
from .peers import figure_peers
from .render import figure_render, figure_send_path
from .resources import figure_goldens, figure_memory
from .service import figure_service
from .validate import figure_validate

__all__ = ["FIGURES", "main", "print_table"]

FIGURES: dict[str, Callable[[bool], list[Row]]] = {
    "render": figure_render,
    "sendpath": figure_send_path,
    "peers": figure_peers,
    "validate": figure_validate,
    "delivery": figure_delivery,
    "memory": figure_memory,
    "goldens": figure_goldens,
    "service": figure_service,
    "batch": figure_batching,
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def print_table(rows: list[Row]) -> None:
    headers = ["figure", "relay", "baseline", "ratio", "spread", "goal", "met"]
    cells = [
        [
            r["figure"],
            r["relay"],
            r["baseline"],
            "" if r["ratio"] is None else f"{r['ratio']:.2f}x",
            r.get("spread", ""),
            r["goal"],
            {True: "yes", False: "NO", None: "-"}[r["met"]],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cell_row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cell_row, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small workloads, for a smoke run")
    parser.add_argument("--only", choices=sorted(FIGURES), action="append", help="run only these figures")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if shutil.which("relay") is None and not (ROOT / "engine").is_dir():
        sys.exit("run from a checkout with relay installed (pip install -e '.[dev]')")
    print(f"machine: {machine()}")
    rows: list[Row] = []
    for name in args.only or list(FIGURES):
        started = time.perf_counter()
        rows.extend(FIGURES[name](args.quick))
        print(f"  {name}: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print()
    print_table(rows)
    notes = [f"- {r['figure']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        print()
        print("\n".join(notes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
