"""The embedded queue's writer: de-duplication, multi-row writes, sequence numbers, all in one group commit."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from relay.service import queue as queue_module
from relay.service.queue import EmbeddedQueue, Message, claim_ids, open_db


@pytest.mark.parametrize(
    ("remembered", "ids", "fresh"),
    [
        ([], ["a", "b", "c"], [True, True, True]),
        ([], ["a", "b", "a", "a"], [True, True, False, False]),
        (["b"], ["a", "b", "c"], [True, False, True]),
        (["a", "b"], ["a", "b"], [False, False]),
        ([], [], []),
    ],
)
def test_claim_ids_says_which_ids_are_new(
    tmp_path: Path, remembered: list[str], ids: list[str], fresh: list[bool]
) -> None:
    db = open_db(tmp_path / "q.sqlite")
    claim_ids(db, "web", remembered, 1.0, 60)
    db.execute("BEGIN")
    assert claim_ids(db, "web", ids, 2.0, 60) == fresh
    db.execute("COMMIT")
    assert claim_ids(db, "other", ids, 2.0, 60) == [i not in ids[:n] for n, i in enumerate(ids)]  # per source
    assert claim_ids(db, "web", ids, 3.0, 0) == [True] * len(ids)  # no window: nothing remembered


def test_claim_ids_across_statements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_module, "_ROWS", 3)
    db = open_db(tmp_path / "q.sqlite")
    claim_ids(db, "web", ["m4"], 1.0, 60)
    ids = ["m1", "m2", "m3", "m1", "m4", "m5", "m5", "m6"]
    assert claim_ids(db, "web", ids, 2.0, 60) == [True, True, True, False, False, True, False, True]
    (count,) = db.execute("SELECT COUNT(*) FROM seen").fetchone()
    assert count == 6


def test_groups_are_stored_in_order_with_consecutive_sequence_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "_ROWS", 4)  # several statements per group
    queue = EmbeddedQueue(tmp_path / "q.sqlite", ["hook"])
    try:
        requests = [[Message(f"m-{r}-{n}", f'{{"r":{r},"n":{n}}}'.encode()) for n in range(5)] for r in range(6)]
        requests[3].append(Message("m-0-0", b"{}"))  # a duplicate of the first request's first event
        futures = []
        barrier = threading.Barrier(len(requests))

        def post(messages: list[Message]) -> None:
            barrier.wait()
            futures.append(queue.append("web", messages))

        threads = [threading.Thread(target=post, args=(messages,)) for messages in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results = [future.result(timeout=10) for future in futures]
        # Whichever of the two m-0-0 came first is stored; the other is the one duplicate.
        assert sum(r.accepted for r in results) == 30 and sum(r.duplicates for r in results) == 1
        records = queue.read_after(0, limit=1000)
        assert [r.seq for r in records] == list(range(1, 31))
        assert queue.head == 30
        assert len({r.raw for r in records}) == 30
    finally:
        queue.close()


def test_a_retried_request_is_found_out_and_the_rest_of_its_group_is_stored(tmp_path: Path) -> None:
    queue = EmbeddedQueue(tmp_path / "q.sqlite", ["hook"])
    try:
        assert queue.append("web", [Message("m-1", b"1"), Message("m-2", b"2")]).result(10).accepted == 2
        # One group (the writer is held while both are appended): a new request and a retry.
        with queue._lock:
            fresh = queue.append("web", [Message("m-3", b"3"), Message("m-4", b"4"), Message("m-3", b"3")])
            retried = queue.append("web", [Message("m-2", b"2"), Message("m-5", b"5")])
        assert (fresh.result(10).accepted, fresh.result(10).duplicates) == (2, 1)
        assert (retried.result(10).accepted, retried.result(10).duplicates) == (1, 1)
        assert [r.raw for r in queue.read_after(0)] == [b"1", b"2", b"3", b"4", b"5"]
        assert queue.head == 5
    finally:
        queue.close()
