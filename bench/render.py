"""Per-event figures: relay's render, and the send path of a read-before-write preset, against
hand-written Python doing the same work (``bench/handwritten``).

Each preset runs on two streams of the same events: contacts that repeat (a site's real traffic:
the email-verdict caches are warm) and contacts that are all new (every block of every round gets
emails never seen before, so no cache keyed by email helps either side). Before anything is timed,
relay and the baseline are checked to agree on every event of the stream: the same drops, and the
same requests, field by field.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import relay
from relay import CompiledPreset, Settings

from .common import NOW, PRESETS, Duel, Row, duel, engine_outcome, identical, load, row, timer
from .events import generate, stored_member
from .handwritten import HANDWRITTEN, Drop, Outcome, ReadsBeforeWrite, Send

__all__ = ["Streams", "baseline_send_path", "figure_render", "figure_send_path", "lookup_presets", "relay_send_path"]

GOAL = 1.5
Event = dict[str, Any]
Looked = tuple[Event, Any]  # an event and what its lookup answers


#: One counter for the whole process: no two distinct-contacts streams ever share an email.
_TAGS = itertools.count()


class Streams:
    """The events a figure runs on: one repeated-contacts stream, and as many fresh
    distinct-contacts streams as asked for, each with emails no other stream has."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.repeated = list(generate(count))

    def distinct(self) -> list[Event]:
        return list(generate(self.count, distinct=f"d{next(_TAGS):05d}"))


def sizes(quick: bool) -> tuple[int, int]:
    """(events per block, rounds)."""
    return (600, 5) if quick else (10_000, 7)


def relay_send_path(preset: CompiledPreset, settings: Settings) -> Callable[[Looked], Outcome]:
    """decide, then build each step, binding the read step's answer: what delivery does per event."""

    def send(item: Looked) -> Outcome:
        event, answer = item
        plan = relay.decide(preset, event, settings)
        if plan.action == "drop":
            return Drop(plan.rule or "")
        answers: dict[str, Any] = {}
        requests = []
        for step in preset.steps:
            request = relay.build(preset, plan, step, answers=answers, now=NOW)
            if request is None:
                continue
            requests.append(request)
            if step.bind is not None:
                answers[step.bind] = answer
        return Send(tuple(requests))

    return send


def baseline_send_path(integration: ReadsBeforeWrite) -> Callable[[Looked], Outcome]:
    """The hand-written equivalent: plan, build the GET, then the write from its answer."""

    def send(item: Looked) -> Outcome:
        event, answer = item
        plan = integration.plan(event)
        if isinstance(plan, Drop):
            return plan
        return integration.send(plan, answer)

    return send


def with_answers(events: list[Event]) -> list[Looked]:
    return [(event, stored_member(event, index)) for index, event in enumerate(events)]


def _row(figure: str, result: Duel, note: str) -> Row:
    return row(
        figure,
        f"{result.relay_median:.1f} µs/event",
        f"{result.baseline_median:.1f} µs/event (hand-written)",
        ratio=result.ratio,
        spread=result.spread,
        goal=f"<= {GOAL}x",
        met=result.ratio <= GOAL,
        note=note,
    )


def figure_render(quick: bool) -> list[Row]:
    count, rounds = sizes(quick)
    streams = Streams(count)
    return [row for name in PRESETS for row in _render_rows(name, streams, rounds)]


def _render_rows(name: str, streams: Streams, rounds: int) -> list[Row]:
    preset, settings = load(name)
    hand = HANDWRITTEN[name](settings.values)

    # Each side is timed producing its own result: relay a Decision, the baseline a Drop or Send.
    def ours(event: Event) -> relay.Decision:
        return relay.render(preset, event, settings, now=NOW)

    def theirs(event: Event) -> Outcome:
        return hand.render(event, NOW)

    rows = []
    sources: list[tuple[str, Callable[[], list[Event]]]] = [
        ("", lambda: streams.repeated),
        (", distinct contacts", streams.distinct),
    ]
    for label, make in sources:
        events = make()
        sends = identical(((event["messageId"], engine_outcome(ours(event)), theirs(event)) for event in events), name)
        timed = duel(timer(ours, make), timer(theirs, make), rounds)
        what = "every block's emails are new" if label else "contacts repeat, so email verdicts are cached"
        note = f"{len(events):,} events ({sends:,} sends), {rounds} interleaved rounds; {what}"
        rows.append(_row(f"render {name}{label}", timed, note))
    return rows


def lookup_presets() -> list[str]:
    """The bundled presets that read before they write."""
    return [name for name in PRESETS if any(step.role == "read" for step in load(name)[0].steps)]


def figure_send_path(quick: bool) -> list[Row]:
    count, rounds = sizes(quick)
    streams = Streams(count)
    return [row for name in lookup_presets() for row in _send_path_rows(name, streams, rounds)]


def _send_path_rows(name: str, streams: Streams, rounds: int) -> list[Row]:
    preset, settings = load(name)
    hand = HANDWRITTEN[name](settings.values)
    if not isinstance(hand, ReadsBeforeWrite):
        raise TypeError(f"the hand-written {name} must split plan, lookup and build: its preset reads first")
    ours, theirs = relay_send_path(preset, settings), baseline_send_path(hand)
    repeated = with_answers(streams.repeated)
    rows = []
    sources: list[tuple[str, Callable[[], list[Looked]]]] = [
        ("", lambda: repeated),
        (", distinct contacts", lambda: with_answers(streams.distinct())),
    ]
    for label, make in sources:
        items = make()
        sends = identical(((event["messageId"], ours((event, a)), theirs((event, a))) for event, a in items), name)
        timed = duel(timer(ours, make), timer(theirs, make), rounds)
        note = (
            f"{len(items):,} events ({sends:,} sends), {rounds} rounds: decide, build the read step, then the write "
            "from its answer (3 in 4 find a stored member), as delivery does"
        )
        rows.append(_row(f"send path {name}{label}", timed, note))
    return rows
