"""Data, not code: this file makes the folder the package relay.bundled.examples, so the wheel carries it."""
