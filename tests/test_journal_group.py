"""The journal's group commit: outcomes and step marks wait in memory for one write per group,
yet every read sees them, nothing is durable before its commit, and step progress survives for replay."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from relay.delivery.journal import COMMIT_EVERY, Journal


def test_a_group_is_seen_by_reads_before_it_commits_and_by_others_only_after(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()  # an earlier run: had_entries stays False, status() is asked of the file
    journal = Journal(path)
    journal.record("1:a", "p", 1, "delivered", None, 200, 1, "ada")
    journal.record("2:b", "p", 2, "failed", "boom", 500, 3, "bob")
    assert journal.counts() == {"delivered": 1, "failed": 1}
    assert journal.unresolved() == 1
    assert journal.blocked_keys() == {"bob": 2}
    other = sqlite3.connect(path)  # another reader of the file, as after a crash
    assert other.execute("SELECT COUNT(*) FROM outcomes").fetchone() == (0,)  # a crash now re-sends both
    journal.flush()
    assert other.execute("SELECT key, status FROM outcomes ORDER BY line").fetchall() == [
        ("1:a", "delivered"),
        ("2:b", "failed"),
    ]
    other.close()
    journal.close()


def test_a_full_group_commits_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    for line in range(COMMIT_EVERY):
        journal.record(f"{line}:x", "p", line, "delivered", None, 200, 1)
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM outcomes").fetchone() == (COMMIT_EVERY,)
    other.close()
    journal.close()


def test_step_progress_is_answered_from_memory_and_kept_for_a_replay(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    steps = journal.steps("7:k")
    assert not steps.done("write")
    steps.mark("write")
    assert steps.done("write")
    assert not journal.steps("8:other").done("write")
    journal.record("7:k", "p", 7, "failed", "track: 500", 500, 3, "kim")  # the next step failed
    journal.close()
    replay = Journal(path)
    assert replay.steps("7:k").done("write")  # a replay does not send the write again
    assert not replay.steps("7:k").done("track")
    replay.close()
