"""Data, not code: this file makes the folder the package relay.bundled.presets, so the wheel carries it."""
