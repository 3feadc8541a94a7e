"""``python -m bench``: relay's speed, as ratios against baselines measured in the same run.

Figures:
1. render   per-event render+validate+encode per preset vs hand-written Python (same bytes)
2. validate cold `relay validate` (interpreter start included) vs `python -c pass`
3. delivery `relay send` to a local fake vs a raw requests.Session loop, at concurrency 1/8/32
4. memory   peak RSS streaming 1,000,000 events through `relay send --dry-run` vs 10,000 events
5. goldens  wall time of the golden suite (reported, so growth shows)

``--quick`` shrinks every workload (for a smoke run); ``--only NAME`` runs one figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import relay
from bench.events import generate
from bench.handwritten import HANDWRITTEN
from relay import CompiledPreset, RunOptions, deliver_stream, load_preset
from relay.authoring.golden import discover_cases
from relay.bundled import presets_dir, schemas_dir

#: The repository: commands are timed from here (`relay validate` of the bundled presets).
ROOT = Path(__file__).resolve().parent.parent

PRESETS = ["mailgun", "mailjet", "sendgrid", "brevo", "klaviyo", "webhook"]
NOW = 1_700_000_000.0
Row = dict[str, Any]


def _settings(name: str) -> dict[str, Any]:
    cases = discover_cases(name)
    settings = dict(cases[0].settings)
    if name == "webhook":
        settings["signing_secret"] = "whsec-bench"
    return settings


def _engine_outcome(preset: CompiledPreset, settings: Any, event: Any) -> tuple[Any, ...]:
    decision = relay.render(preset, event, settings, now=NOW)
    if decision.action == "drop":
        return ("drop", decision.rule)
    request = decision.requests[-1]
    outcome: tuple[Any, ...] = ("send", request.url, request.content)
    reads = [r for r in decision.requests if r.role == "read"]
    if reads:
        outcome += (reads[0].url,)
    if "X-Signature" in request.headers:
        outcome += (request.headers["X-Signature"],)
    return outcome


def _best(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def figure_render(quick: bool) -> list[Row]:
    events = list(generate(2_000 if quick else 10_000))
    rows = []
    for name in PRESETS:
        preset = load_preset(presets_dir() / name)
        settings = preset.resolve_settings(_settings(name), environ={})
        hand = HANDWRITTEN[name]
        values = settings.values
        sends = 0
        for event in events:  # warm-up, and the proof that both produce the same bytes
            ours, theirs = _engine_outcome(preset, settings, event), hand(event, values, NOW)
            assert ours == theirs, f"{name}: engine and hand-written differ for {event['messageId']}:\n{ours}\n{theirs}"
            sends += ours[0] == "send"
        engine_s = _best(lambda: [relay.render(preset, e, settings, now=NOW) for e in events], 3)  # noqa: B023
        hand_s = _best(lambda: [hand(e, values, NOW) for e in events], 3)  # noqa: B023
        per_event, baseline = engine_s / len(events) * 1e6, hand_s / len(events) * 1e6
        rows.append(
            {
                "figure": f"render {name}",
                "relay": f"{per_event:.1f} µs/event",
                "baseline": f"{baseline:.1f} µs/event (hand-written)",
                "ratio": per_event / baseline,
                "goal": "<= 1.5x",
                "met": per_event / baseline <= 1.5,
                "note": f"{len(events)} events, {sends} sends, bytes identical",
            }
        )
    return rows


def _wall(command: list[str], repeats: int, cwd: Path = ROOT) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def figure_validate(quick: bool) -> list[Row]:
    repeats = 3 if quick else 5
    python = _wall([sys.executable, "-c", "pass"], repeats)
    bundled = _wall([sys.executable, "-m", "relay", "validate"], repeats)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "presets"
        source = (presets_dir() / "mailjet" / "preset.yaml").read_text()
        schema = schemas_dir() / "mailjet" / "managecontact.schema.json"
        for index in range(50):
            folder = root / f"gen{index:02d}"
            folder.mkdir(parents=True)
            (folder / "preset.yaml").write_text(
                source.replace("name: mailjet", f"name: gen{index:02d}").replace(
                    "../../schemas/mailjet/managecontact.schema.json", str(schema)
                )
            )
        fifty = _wall([sys.executable, "-m", "relay", "validate", "--presets", str(root)], repeats)
    count = len(PRESETS)
    return [
        {
            "figure": f"cold validate, {count} bundled presets",
            "relay": f"{bundled:.3f} s",
            "baseline": f"{python:.3f} s (python -c pass)",
            "ratio": bundled / python,
            "goal": "<= 0.5 s wall",
            "met": bundled <= 0.5,
            "note": "interpreter start included",
        },
        {
            "figure": "cold validate, 50 generated presets",
            "relay": f"{fifty:.3f} s",
            "baseline": f"{python:.3f} s (python -c pass)",
            "ratio": fifty / python,
            "goal": "< 1 s wall",
            "met": fifty < 1.0,
            "note": "",
        },
    ]


@contextmanager
def _fake_process(config: dict[str, Any]) -> Iterator[str]:
    """The Mailjet fake in its own process, so it does not share a GIL with the client measured."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fake.json"
        path.write_text(json.dumps(config))
        process = subprocess.Popen(
            [sys.executable, "-m", "relay", "fake", "mailjet", "--config", str(path)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            yield line.split("listening on ", 1)[1].split()[0]
        finally:
            process.terminate()
            process.wait(timeout=10)


def figure_delivery(quick: bool) -> list[Row]:
    import requests

    preset = load_preset(presets_dir() / "mailjet")
    raw_settings = {"api_key": "pub-bench", "secret_key": "sec-bench", "list_id": 10001}
    settings = preset.resolve_settings(raw_settings, environ={})
    fake_config = {**raw_settings, "lists": [10001], "properties": dict(preset.constants["properties"])}
    count = 400 if quick else 2_000
    events = [e for e in generate(count * 3) if relay.render(preset, e, settings, now=NOW).action == "send"][:count]
    lines = "".join(json.dumps(e) + "\n" for e in events).encode()
    requests_ = [relay.render(preset, e, settings, now=NOW).request for e in events]
    rows = []
    for concurrency in (1, 8, 32):
        with _fake_process(fake_config) as url, tempfile.TemporaryDirectory() as scratch:
            options = RunOptions(rate=1e6, burst=1000)
            start = time.perf_counter()
            stats = deliver_stream(
                preset,
                settings,
                io.BytesIO(lines),
                options=options,
                concurrency=concurrency,
                journal_path=Path(scratch) / "j.sqlite",
                dead_letter_path=Path(scratch) / "d.ndjson",
                redirects={"https://api.mailjet.com": url},
            )
            relay_s = time.perf_counter() - start
            assert stats.delivered == len(events), stats.as_dict()
        with _fake_process(fake_config) as url:
            targets = [r.url.replace("https://api.mailjet.com", url) for r in requests_ if r is not None]
            chunks = [list(range(i, len(targets), concurrency)) for i in range(concurrency)]

            def post(indexes: list[int], targets: list[str] = targets) -> None:
                session = requests.Session()
                for index in indexes:
                    request = requests_[index]
                    assert request is not None
                    answer = session.post(targets[index], data=request.content, headers=request.headers)
                    assert answer.status_code == 201, answer.text

            start = time.perf_counter()
            threads = [threading.Thread(target=post, args=(chunk,)) for chunk in chunks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            raw_s = time.perf_counter() - start
        ours, theirs = len(events) / relay_s, len(events) / raw_s
        rows.append(
            {
                "figure": f"delivery, concurrency {concurrency}",
                "relay": f"{ours:,.0f} events/s",
                "baseline": f"{theirs:,.0f} events/s (raw requests.Session)",
                "ratio": ours / theirs,
                "goal": ">= 0.8x throughput",
                "met": ours / theirs >= 0.8,
                "note": f"{len(events)} events to the Mailjet fake (own process), journal on",
            }
        )
    return rows


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
        )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def figure_memory(quick: bool) -> list[Row]:
    small, large = (10_000, 100_000) if quick else (10_000, 1_000_000)
    start = time.perf_counter()
    base = _peak_rss_mb(small)
    peak = _peak_rss_mb(large)
    seconds = time.perf_counter() - start
    return [
        {
            "figure": f"memory, {large:,} events dry-run",
            "relay": f"{peak:.1f} MB peak RSS",
            "baseline": f"{base:.1f} MB at {small:,} events",
            "ratio": peak / base,
            "goal": "flat (<= 1.10x)",
            "met": peak / base <= 1.10,
            "note": f"{seconds:.0f} s for both runs",
        }
    ]


def figure_goldens(quick: bool) -> list[Row]:
    count = sum(len(discover_cases(name)) for name in PRESETS)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_golden.py"]
    wall = _wall(command, 1 if quick else 3)
    per_case = wall / count * 1000
    return [
        {
            "figure": "golden suite",
            "relay": f"{wall:.2f} s",
            "baseline": f"{count} cases",
            "ratio": None,
            "goal": "report",
            "met": None,
            "note": f"{per_case:.1f} ms per case incl. pytest start",
        }
    ]


FIGURES: dict[str, Callable[[bool], list[Row]]] = {
    "render": figure_render,
    "validate": figure_validate,
    "delivery": figure_delivery,
    "memory": figure_memory,
    "goldens": figure_goldens,
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
    headers = ["figure", "relay", "baseline", "ratio", "goal", "met"]
    cells = [
        [
            r["figure"],
            r["relay"],
            r["baseline"],
            "" if r["ratio"] is None else f"{r['ratio']:.2f}x",
            r["goal"],
            {True: "yes", False: "NO", None: "-"}[r["met"]],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small workloads, for a smoke run")
    parser.add_argument("--only", choices=sorted(FIGURES), action="append", help="run only these figures")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    if shutil.which("relay") is None and not (ROOT / "engine").is_dir():
        sys.exit("run from a checkout with relay installed (pip install -e '.[dev]')")
    print(f"machine: {machine()}")
    rows: list[Row] = []
    for name in args.only or list(FIGURES):
        started = time.perf_counter()
        produced = FIGURES[name](args.quick)
        rows.extend(produced)
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
