"""Data, not code: this file makes the folder the package relay.bundled.schemas, so the wheel carries it."""
