"""The bench's baselines stay honest: hand-written functions produce the engine's exact bytes."""

from __future__ import annotations

from bench.events import generate
from bench.handwritten import HANDWRITTEN
from bench.run import NOW, PRESETS, _engine_outcome, _settings
from relay import load_preset
from tests.paths import ROOT


def test_handwritten_baselines_match_the_engine_byte_for_byte() -> None:
    events = list(generate(600, seed=7))
    for name in PRESETS:
        preset = load_preset(ROOT / "presets" / name)
        settings = preset.resolve_settings(_settings(name), environ={})
        sends = 0
        for event in events:
            ours = _engine_outcome(preset, settings, event)
            assert ours == HANDWRITTEN[name](event, settings.values, NOW), (name, event["messageId"])
            sends += ours[0] == "send"
        assert sends > 100, name  # the stream exercises real sends, not only drops


def test_generated_stream_covers_every_mapping_row_and_drop() -> None:
    seen = set()
    for event in generate(2000):
        seen.add((event["type"], event.get("event")))
    assert {
        ("identify", None),
        ("page", None),
        ("track", "Signed Up"),
        ("track", "Order Completed"),
        ("track", "Identified"),
        ("track", "Subscribed"),
        ("track", "Unsubscribed"),
        ("track", "Product Viewed"),
    } <= seen
