"""Where the repository is: tests read its README, docs and fixtures (not the bundled data)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
