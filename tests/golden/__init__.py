"""Data, not code: this file makes the folder the package relay.bundled.goldens, so the wheel carries it."""
