"""The outbox: dedupe, leases, delivery outcomes and backoff."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col

from contract.errors import LeaseLostError
from store import outbox
from store.db import open_session, transaction
from store.models import OutboxEntry, utcnow
from store.monitoring import backlog, list_outbox


def _enqueue(engine: Engine, key: str, message_id: int | None = None) -> int:
    with transaction(engine) as session:
        entry = outbox.enqueue(
            session,
            kind="receipt",
            recipient="stats@cert-a.example",
            raw=b"sealed " + key.encode(),
            dedupe_key=key,
            message_id=message_id,
        )
        assert entry is not None and entry.id is not None
        return entry.id


def _entry(engine: Engine, entry_id: int) -> OutboxEntry:
    with open_session(engine) as session:
        entry = session.get(OutboxEntry, entry_id)
    assert entry is not None
    return entry


def test_enqueue_dedupes_on_key(engine: Engine, new_message_id: Callable[..., int]) -> None:
    message_id = new_message_id()
    first = _enqueue(engine, "receipt:1", message_id)
    with transaction(engine) as session:
        again = outbox.enqueue(
            session, kind="receipt", recipient="x@y", raw=b"other", dedupe_key="receipt:1"
        )
        assert again is None
        fresh = outbox.enqueue(
            session, kind="receipt", recipient="x@y", raw=b"b", dedupe_key="receipt:2"
        )
        assert fresh is not None
        repeat = outbox.enqueue(
            session, kind="receipt", recipient="x@y", raw=b"c", dedupe_key="receipt:2"
        )
        assert repeat is None  # seen within the same, uncommitted transaction
    stored = _entry(engine, first)
    assert (stored.state, stored.attempts, stored.message_id) == ("pending", 0, message_id)
    assert stored.raw == b"sealed receipt:1"
    with open_session(engine) as session:
        assert len(list_outbox(session)) == 2


def test_claim_due_leases_each_entry_once(engine: Engine) -> None:
    ids = [_enqueue(engine, f"k{n}") for n in range(3)]
    claimed = outbox.claim_due(engine, "sender-1")
    assert [entry.id for entry in claimed] == ids
    assert all(entry.lease_owner == "sender-1" for entry in claimed)
    assert claimed[0].raw == b"sealed k0"
    assert outbox.claim_due(engine, "sender-2") == []


def test_claim_due_respects_limit_and_due_time(engine: Engine) -> None:
    ids = [_enqueue(engine, f"k{n}") for n in range(3)]
    with transaction(engine) as session:
        session.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.id) == ids[0])
            .values(next_attempt_at=utcnow() + timedelta(hours=1))
        )
    day = 86_400
    claimed = outbox.claim_due(engine, "s", limit=1, lease_seconds=day)
    assert [e.id for e in claimed] == [ids[1]]
    assert [e.id for e in outbox.claim_due(engine, "s", lease_seconds=day)] == [ids[2]]
    later = datetime.now(timezone(timedelta(hours=2))) + timedelta(hours=2)
    assert [e.id for e in outbox.claim_due(engine, "s", now=later)] == [ids[0]]


def test_expired_outbox_lease_can_be_reclaimed(engine: Engine) -> None:
    entry_id = _enqueue(engine, "k")
    assert [e.id for e in outbox.claim_due(engine, "crashed")] == [entry_id]
    soon = utcnow() + timedelta(seconds=301)
    assert [e.id for e in outbox.claim_due(engine, "s2", now=soon)] == [entry_id]


def test_claim_due_race_hands_out_each_entry_once(engine: Engine) -> None:
    ids = {_enqueue(engine, f"k{n}") for n in range(30)}
    workers = 4
    barrier = threading.Barrier(workers)

    def drain(owner: str) -> list[int]:
        barrier.wait()
        taken: list[int] = []
        while batch := outbox.claim_due(engine, owner, limit=3):
            taken.extend(entry.id for entry in batch if entry.id is not None)
        return taken

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(drain, [f"s{n}" for n in range(workers)]))
    everything = [entry_id for taken in results for entry_id in taken]
    assert sorted(everything) == sorted(ids)


def test_mark_sent(engine: Engine) -> None:
    entry_id = _enqueue(engine, "k")
    outbox.claim_due(engine, "s")
    outbox.mark_sent(engine, entry_id)
    entry = _entry(engine, entry_id)
    assert entry.state == "sent"
    assert entry.sent_at is not None and entry.lease_owner is None
    assert outbox.claim_due(engine, "s", now=utcnow() + timedelta(days=1)) == []
    with pytest.raises(LookupError):
        outbox.mark_sent(engine, 999_999)


def test_only_the_lease_holder_records_an_outcome(engine: Engine) -> None:
    entry_id = _enqueue(engine, "k")
    outbox.claim_due(engine, "slow")
    # "slow" held it past its lease; "fast" took it over.
    later = utcnow() + timedelta(seconds=301)
    assert [e.id for e in outbox.claim_due(engine, "fast", now=later)] == [entry_id]

    with pytest.raises(LeaseLostError):
        outbox.mark_sent(engine, entry_id, owner="slow")
    with pytest.raises(LeaseLostError):
        outbox.mark_failed(engine, entry_id, "timeout", max_attempts=3, owner="slow")
    entry = _entry(engine, entry_id)
    assert (entry.state, entry.attempts, entry.lease_owner) == ("pending", 0, "fast")

    outbox.mark_sent(engine, entry_id, owner="fast")
    assert _entry(engine, entry_id).state == "sent"
    with pytest.raises(LeaseLostError):  # sent already: nobody records it again
        outbox.mark_sent(engine, entry_id, owner="fast")
    with pytest.raises(LookupError):
        outbox.mark_sent(engine, 999_999, owner="fast")


def test_backoff_grows_and_ends_in_failed(engine: Engine) -> None:
    entry_id = _enqueue(engine, "k")
    delays = []
    for attempt in range(1, 5):
        before = utcnow()
        assert [e.id for e in outbox.claim_due(engine, "s", now=before + timedelta(days=1))]
        state = outbox.mark_failed(engine, entry_id, f"421 try {attempt}", max_attempts=5)
        entry = _entry(engine, entry_id)
        assert (state, entry.state, entry.attempts) == ("pending", "pending", attempt)
        assert entry.last_error == f"421 try {attempt}"
        assert entry.lease_owner is None
        delays.append(entry.next_attempt_at - before)
    assert all(0.9 * 60 * 2**n <= d.total_seconds() <= 60 * 2**n + 5 for n, d in enumerate(delays))
    assert delays == sorted(delays)
    outbox.claim_due(engine, "s", now=utcnow() + timedelta(days=1))
    assert outbox.mark_failed(engine, entry_id, "550 no", max_attempts=5) == "failed"
    assert _entry(engine, entry_id).state == "failed"
    assert outbox.claim_due(engine, "s", now=utcnow() + timedelta(days=30)) == []
    with pytest.raises(LookupError):
        outbox.mark_failed(engine, 999_999, "x", max_attempts=5)


def test_retry_delay_doubles_up_to_six_hours() -> None:
    def low() -> float:
        return 0.0

    def high() -> float:
        return 1.0

    minutes = [outbox.retry_delay(n, rng=low) / timedelta(minutes=1) for n in range(1, 12)]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]
    assert outbox.retry_delay(1, rng=high) == timedelta(seconds=54)
    assert outbox.retry_delay(10_000, rng=low) == timedelta(hours=6)
    for n in range(1, 9):
        assert outbox.retry_delay(n + 1, rng=high) > outbox.retry_delay(n, rng=low)


def test_listing_backlog_and_retry_failed(engine: Engine) -> None:
    with open_session(engine) as session:
        assert backlog(session) == (0, None)
    ids = [_enqueue(engine, f"k{n}") for n in range(3)]
    outbox.claim_due(engine, "s")
    outbox.mark_sent(engine, ids[0])
    assert outbox.mark_failed(engine, ids[1], "gone", max_attempts=1) == "failed"
    with open_session(engine) as session:
        assert [e.id for e in list_outbox(session)] == ids
        assert [e.id for e in list_outbox(session, state="failed")] == [ids[1]]
        assert [e.id for e in list_outbox(session, state="pending")] == [ids[2]]
        count, oldest = backlog(session)
    assert count == 1
    assert oldest == _entry(engine, ids[2]).created_at and oldest.tzinfo is not None
    assert oldest <= datetime.now(UTC)
    with transaction(engine) as session:
        assert outbox.retry_failed(session) == 1
    entry = _entry(engine, ids[1])
    assert (entry.state, entry.attempts, entry.last_error) == ("pending", 0, "gone")
    with open_session(engine) as session:
        assert backlog(session)[0] == 2
        assert outbox.retry_failed(session) == 0


@pytest.mark.parametrize("insert", ["on conflict", "look first"])
def test_a_draft_is_queued_once_per_dedupe_key(
    engine: Engine,
    new_message_id: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    insert: str,
) -> None:
    # SQLite and PostgreSQL skip a queued key in the INSERT itself; any other database
    # looks first. Either way the first draft stands and the second is not queued.
    if insert == "look first":
        monkeypatch.setattr(outbox, "_QUEUE_NEW", {})
    message_id = new_message_id()

    def queue(draft: bytes) -> int | None:
        with transaction(engine) as session:
            return outbox.enqueue_unsealed(
                session,
                kind="receipt",
                recipient="stats@cert-a.example",
                draft=draft,
                dedupe_key=f"receipt:{message_id}",
                message_id=message_id,
                owner="w1",
            )

    first = queue(b"first draft")
    assert first is not None
    assert queue(b"second draft") is None
    entry = _entry(engine, first)
    assert (entry.raw, entry.state, entry.lease_owner) == (b"first draft", "unsealed", "w1")
    assert entry.lease_until is not None and entry.attempts == 0
