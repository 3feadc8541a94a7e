"""The peers, in the same run: the Mailgun identify mapping in RudderStack's JSON template engine
and in Segment's mapping-kit with ajv (Node, ``bench/node/``), against relay on the same events.

Each round times relay here (decide + build: the one request the peers build; ``relay.render``,
which also builds the read step's GET; and the send path), then runs each peer script once (a fresh
Node process that warms up, then times its passes; see ``bench/node/harness.mjs``). Before any
time counts, every request each peer built is checked against relay's: method, URL, headers and
body bytes. Where ``node`` is missing the figure is skipped with a note.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import relay
from relay.bundled import schemas_dir

from .common import NOW, Row, load, per_item_us, require, row
from .events import generate
from .render import relay_send_path, with_answers

__all__ = ["NODE_DIR", "PEERS", "Peer", "figure_peers", "node_missing"]

NODE_DIR = Path(__file__).resolve().parent / "node"


@dataclass(frozen=True)
class Peer:
    label: str
    script: str
    args: tuple[str, ...] = ()
    #: Whether relay must be at or below this peer's time (the issue's goal: Segment).
    goal: bool = False


PEERS = [
    Peer("Segment mapping-kit + ajv, per event", "segment.mjs", ("--mode", "event"), goal=True),
    Peer("Segment mapping-kit + ajv, transformBatch", "segment.mjs", ("--mode", "batch"), goal=True),
    Peer("RudderStack JSON template", "rudderstack.mjs"),
]


def node_missing() -> str | None:
    """Why the Node peers cannot run here, or None; installs bench/node's packages when needed."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed, and bench/node/node_modules is missing"
        done = subprocess.run([npm, "ci", "--silent"], cwd=NODE_DIR, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"npm ci failed in bench/node: {done.stderr.strip()[-300:]}"
    return None


def _run_peer(peer: Peer, files: dict[str, Path], passes: int, warmup: int, out: Path | None) -> dict[str, Any]:
    command = [
        "node",
        str(NODE_DIR / peer.script),
        *peer.args,
        "--events",
        str(files["events"]),
        "--settings",
        str(files["settings"]),
        "--schema",
        str(files["schema"]),
        "--passes",
        str(passes),
        "--warmup",
        str(warmup),
    ]
    if out is not None:
        command += ["--out", str(out)]
    done = subprocess.run(command, cwd=NODE_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{peer.script} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _check(peer: Peer, built: list[dict[str, Any]], expected: list[relay.Request]) -> None:
    """Each peer request must be relay's: method, URL, headers (in order) and the body's bytes."""
    require(len(built) == len(expected), f"{peer.label} built {len(built)} requests for {len(expected)} events")
    for index, (theirs, ours) in enumerate(zip(built, expected, strict=True)):
        mine = {"method": ours.method, "url": ours.url, "headers": ours.headers, "body": ours.content.decode()}
        same = theirs == mine and list(theirs["headers"].items()) == list(ours.headers.items())
        require(same, f"{peer.label} differs from relay on identify event {index}:\n{theirs}\n{mine}")


def figure_peers(quick: bool) -> list[Row]:
    missing = node_missing()
    if missing is not None:
        print(f"  peers: skipped, {missing}", file=sys.stderr)
        return [row("peers (Node)", "-", f"skipped: {missing}", ratio=None, goal="report", met=None)]
    count, rounds, passes, warmup = (2_000, 3, 3, 2) if quick else (10_000, 5, 5, 3)
    preset, settings = load("mailgun")
    events = [event for event in generate(count) if event["type"] == "identify"]
    decisions = [relay.render(preset, event, settings, now=NOW) for event in events]
    expected = [request for decision in decisions if (request := decision.request) is not None]
    require(len(expected) == len(events), "every identify event of the stream is sent")
    send_path, looked = relay_send_path(preset, settings), with_answers(events)

    upsert = next(step for step in preset.steps if step.role == "write")

    def write(event: dict[str, Any]) -> relay.Request | None:
        """decide + build the write step: the one POST the peers build too (relay.render also
        builds the read step's GET)."""
        return relay.build(preset, relay.decide(preset, event, settings), upsert, now=NOW)

    def render(event: dict[str, Any]) -> relay.Decision:
        return relay.render(preset, event, settings, now=NOW)

    require([write(event) for event in events] == expected, "decide + build must give relay.render's request")
    times: dict[str, list[float]] = {"write": [], "render": [], "send": [], **{peer.label: [] for peer in PEERS}}
    with tempfile.TemporaryDirectory() as scratch:
        files = {
            "events": Path(scratch) / "identify.ndjson",
            "settings": Path(scratch) / "settings.json",
            "schema": schemas_dir() / "mailgun" / "member.schema.json",
        }
        files["events"].write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
        files["settings"].write_text(json.dumps(settings.values), encoding="utf-8")
        for index in range(rounds):
            # relay's figure for a round is, like each peer's, the median of `passes` passes.
            times["write"].append(statistics.median(per_item_us(write, events) for _ in range(passes)))
            times["render"].append(statistics.median(per_item_us(render, events) for _ in range(passes)))
            times["send"].append(statistics.median(per_item_us(send_path, looked) for _ in range(passes)))
            for peer in PEERS:
                out = Path(scratch) / f"{peer.script}-{len(peer.args)}.json" if index == 0 else None
                result = _run_peer(peer, files, passes, warmup, out)
                if out is not None:
                    _check(peer, json.loads(out.read_text(encoding="utf-8")), expected)
                times[peer.label].append(result["us_per_event"])
    return _rows(times, len(events), rounds)


def _rows(times: dict[str, list[float]], events: int, rounds: int) -> list[Row]:
    write, render, send = (statistics.median(times[key]) for key in ("write", "render", "send"))
    rows = []
    for peer in PEERS:
        ratios = [ours / theirs for ours, theirs in zip(times["write"], times[peer.label], strict=True)]
        ratio = statistics.median(ratios)
        theirs = statistics.median(times[peer.label])
        rows.append(
            row(
                f"Mailgun identify vs {peer.label}",
                f"{write:.1f} µs/event (decide + build)",
                f"{theirs:.1f} µs/event (Node)",
                ratio=ratio,
                spread=f"{min(ratios):.2f}-{max(ratios):.2f}x",
                goal="<= 1.0x" if peer.goal else "report",
                met=ratio <= 1.0 if peer.goal else None,
                note=(
                    f"{events:,} identify events, {rounds} rounds; the peer's requests equal relay's, byte for byte; "
                    f"relay.render, which also builds the read step's GET: {render:.1f} µs/event"
                ),
            )
        )
    segment = PEERS[0].label
    ratios = [ours / theirs for ours, theirs in zip(times["send"], times[segment], strict=True)]
    rows.append(
        row(
            f"Mailgun identify send path vs {segment}",
            f"{send:.1f} µs/event (send path)",
            f"{statistics.median(times[segment]):.1f} µs/event (Node)",
            ratio=statistics.median(ratios),
            spread=f"{min(ratios):.2f}-{max(ratios):.2f}x",
            goal="report",
            met=None,
            note="relay also builds the read step's GET and merges its answer into vars; the peers do neither",
        )
    )
    return rows
