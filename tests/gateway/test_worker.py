"""The worker and the outbox under failure: crashes, repeats, poison messages, relays down.

Nothing sleeps: an expired lease is made by moving `lease_until` into the past in the
database, which is what the passing of time would do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col
from support import TYPE1, TeamClient

from contract.errors import ClearinghouseError, DeliveryError, GnuPGError, LeaseLostError
from gateway import pipeline
from gateway import reply as sealing
from gateway.app import App
from gateway.delivery import MaildirTransport
from gateway.pipeline import Outcome, process_message
from gateway.service import reprocess
from gateway.spool import accept
from gateway.worker import MAX_ATTEMPTS, Worker
from store import leases, outbox, spool
from store.db import open_session, transaction
from store.models import Message, OutboxEntry, utcnow
from store.monitoring import list_outbox
from store.spool import Spooled
from store.submission_rows import list_submissions

NOT_ENCRYPTED = b"From: someone@example.org\r\nSubject: hi\r\n\r\nplain text\r\n"


def expire_leases(app: App) -> None:
    """What waiting LEASE_SECONDS would do."""
    past = utcnow() - timedelta(seconds=1)
    with transaction(app.engine) as s:
        s.exec(
            update(Message).where(col(Message.lease_until).is_not(None)).values(lease_until=past)
        )
        s.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.lease_until).is_not(None))
            .values(lease_until=past)
        )


def message(app: App, message_id: int) -> Message:
    with open_session(app.engine) as s:
        found = spool.get_message(s, message_id)
        assert found is not None
        return found


def revisions(app: App) -> list[tuple[str, str, int, int]]:
    with open_session(app.engine) as s:
        return [(r.team, r.type, r.revision, r.message_id) for r in list_submissions(s)]


def entries(app: App) -> list[OutboxEntry]:
    with open_session(app.engine) as s:
        return list_outbox(s)


def maildir_files(app: App) -> list[Path]:
    return sorted(p for p in app.config.outbound.maildir.rglob("*") if p.is_file())


# --- the same message twice ----------------------------------------------------------------


def test_a_worker_whose_lease_was_taken_over_records_nothing(
    app: App, team: TeamClient, worker: Worker
) -> None:
    # Worker A's lease ran out while it worked; worker B claimed and finished the message.
    message_id, _ = accept(app.engine, team.submit(TYPE1), "ingest")
    assert leases.claim_message(app.engine, message_id, "worker-a")
    expire_leases(app)
    assert leases.claim_message(app.engine, message_id, "worker-b")
    assert process_message(app, message_id, "worker-b").state == "accepted"
    with pytest.raises(LeaseLostError):
        process_message(app, message_id, "worker-a")
    assert revisions(app) == [("alpha", "type1", 1, message_id)]
    assert [(e.kind, e.dedupe_key) for e in entries(app)] == [("receipt", f"receipt:{message_id}")]


def test_reprocessing_an_accepted_message_is_refused_and_changes_nothing(
    app: App, team: TeamClient, worker: Worker
) -> None:
    message_id, _ = accept(app.engine, team.submit(TYPE1), "ingest")
    assert worker.run_once() == {"accepted": 1}
    assert worker.flush().sent == 1
    with pytest.raises(ClearinghouseError, match="only quarantined or rejected"):
        list(reprocess(app, message_id))
    assert message(app, message_id).state == "accepted"
    assert revisions(app) == [("alpha", "type1", 1, message_id)]
    assert [(e.kind, e.state) for e in entries(app)] == [("receipt", "sent")]
    assert len(maildir_files(app)) == 1


# --- a crash inside the processing transaction -------------------------------------------


def test_crash_before_commit_leaves_the_message_received_and_the_next_run_accepts_it(
    app: App, team: TeamClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_enqueue = outbox.enqueue_unsealed
    calls: list[str] = []

    def crash_once(*args: object, **kwargs: object) -> int | None:
        calls.append("enqueue")
        if len(calls) == 1:
            raise RuntimeError("power cut between store_report and commit")
        return real_enqueue(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "enqueue_unsealed", crash_once)
    message_id, _ = accept(app.engine, team.submit(TYPE1), "ingest")

    assert worker.run_once() == {"error": 1}
    crashed = message(app, message_id)
    assert (crashed.state, crashed.reason, crashed.attempts) == ("received", None, 1)
    assert revisions(app) == []
    assert entries(app) == []

    expire_leases(app)
    assert worker.run_once() == {"accepted": 1}
    assert message(app, message_id).state == "accepted"
    assert revisions(app) == [("alpha", "type1", 1, message_id)]
    assert [e.kind for e in entries(app)] == ["receipt"]
    assert worker.flush().sent == 1
    assert len(maildir_files(app)) == 1


# --- a crash between the commit and the sealing of the reply ------------------------------


def test_a_reply_left_unsealed_by_a_crash_is_sealed_by_the_next_flush(
    app: App, team: TeamClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "seal_drafts", lambda *args: 0)  # the worker died here
    message_id, _ = accept(app.engine, team.submit(TYPE1), "ingest")
    assert worker.run_once() == {"accepted": 1}
    monkeypatch.undo()
    [draft] = entries(app)
    assert (draft.kind, draft.state, draft.message_id) == ("receipt", "unsealed", message_id)

    # Its lease is the dead worker's: neither sealed twice nor ever delivered as a draft.
    assert worker.flush().sent == 0
    assert maildir_files(app) == []
    expire_leases(app)
    assert worker.flush().sent == 1
    [entry] = entries(app)
    assert entry.state == "sent"
    [delivered] = maildir_files(app)
    assert team.decrypt(delivered.read_bytes()).clean
    assert message(app, message_id).state == "accepted"


def test_a_reply_that_cannot_be_sealed_waits_unsealed_and_is_never_delivered(
    app: App, team: TeamClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gpg_gone(*args: object, **kwargs: object) -> bytes:
        raise GnuPGError("gpg-agent is not running")

    monkeypatch.setattr(sealing, "seal_from_gateway", gpg_gone)
    message_id, _ = accept(app.engine, team.submit(TYPE1), "ingest")
    assert worker.run_once() == {"accepted": 1}  # the outcome stands
    [draft] = entries(app)
    assert (draft.state, draft.attempts, draft.last_error) == (
        "unsealed",
        1,
        "gpg-agent is not running",
    )
    assert worker.flush().sent == 0
    assert maildir_files(app) == []

    monkeypatch.undo()
    expire_leases(app)
    assert worker.flush().sent == 1
    assert [e.state for e in entries(app)] == ["sent"]


# --- a message whose processing always raises -------------------------------------------


def test_a_poison_message_is_quarantined_after_max_attempts_and_blocks_nothing(
    app: App, team: TeamClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison, _ = accept(app.engine, b"Subject: poison\r\n\r\nx\r\n", "ingest")
    real_process = process_message

    def process(
        app_: App, message_id: int, owner: str | None = None, claimed: Spooled | None = None
    ) -> Outcome:
        if message_id == poison:
            raise RuntimeError("a bug that this message triggers every time")
        return real_process(app_, message_id, owner, claimed)

    monkeypatch.setattr("gateway.worker.process_message", process)
    submitted, _ = accept(app.engine, team.submit(TYPE1), "ingest")
    plain, _ = accept(app.engine, NOT_ENCRYPTED, "ingest")

    assert worker.run_once() == {"error": 1, "accepted": 1, "quarantined": 1}
    assert message(app, submitted).state == "accepted"
    assert (message(app, plain).state, message(app, plain).reason) == (
        "quarantined",
        "not-encrypted",
    )
    for attempt in range(2, MAX_ATTEMPTS + 1):
        assert message(app, poison).state == "received"
        # Within its lease nobody touches it again; after it, the next claim does.
        assert worker.run_once() == {}
        expire_leases(app)
        late, _ = accept(app.engine, NOT_ENCRYPTED + str(attempt).encode(), "ingest")
        assert worker.run_once() == {"error": 1, "quarantined": 1}
        assert message(app, late).reason == "not-encrypted"
        assert message(app, poison).attempts == attempt

    given_up = message(app, poison)
    assert (given_up.state, given_up.reason) == ("quarantined", "processing-failed")
    assert given_up.lease_owner is None
    expire_leases(app)
    assert worker.run_once() == {}
    assert message(app, poison).attempts == MAX_ATTEMPTS


# --- the outbox ------------------------------------------------------------------------------


class FailingTransport:
    def __init__(self, error: DeliveryError) -> None:
        self.error = error
        self.calls: list[tuple[str, str]] = []

    def deliver(self, recipient: str, raw: bytes, key: str) -> None:
        self.calls.append((recipient, key))
        raise self.error


def queue_one(app: App, recipient: str = "cert@alpha.example") -> int:
    with transaction(app.engine) as s:
        entry = outbox.enqueue(
            s,
            kind="receipt",
            recipient=recipient,
            raw=b"Subject: [...]\r\n\r\nsealed\r\n",
            dedupe_key="receipt:test",
        )
        assert entry is not None and entry.id is not None
        return entry.id


def test_a_transient_delivery_failure_is_retried_later(app: App) -> None:
    entry_id = queue_one(app)
    [before] = entries(app)
    transport = FailingTransport(DeliveryError("relay 127.0.0.1:25: timed out"))
    worker = Worker(app, transport)

    result = worker.flush()
    assert (result.sent, result.retrying, result.failed) == (0, 1, 0)
    [after] = entries(app)
    assert (after.id, after.state, after.attempts) == (entry_id, "pending", 1)
    assert after.last_error == "relay 127.0.0.1:25: timed out"
    assert after.next_attempt_at > before.next_attempt_at
    assert after.next_attempt_at > utcnow()
    assert after.lease_owner is None

    # Not due yet: another flush leaves it alone.
    assert worker.flush().retrying == 0
    assert transport.calls == [("cert@alpha.example", f"outbox-{entry_id}")]


def test_a_permanent_delivery_failure_marks_the_entry_failed(app: App) -> None:
    queue_one(app)
    transport = FailingTransport(DeliveryError("550 no such user", permanent=True))
    result = Worker(app, transport).flush()
    assert (result.sent, result.retrying, result.failed) == (0, 0, 1)
    [entry] = entries(app)
    assert (entry.state, entry.attempts, entry.last_error) == ("failed", 1, "550 no such user")


def test_delivering_the_same_entry_twice_to_a_maildir_leaves_one_file(
    app: App, worker: Worker
) -> None:
    entry_id = queue_one(app)
    assert worker.flush().sent == 1
    # A crash between the write and `mark_sent`: the entry is due again.
    with transaction(app.engine) as s:
        s.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.id) == entry_id)
            .values(state=outbox.PENDING, sent_at=None)
        )
    assert worker.flush().sent == 1
    [delivered] = maildir_files(app)
    assert delivered.parent.name == "new"
    assert delivered.read_bytes() == (
        b"Delivered-To: cert@alpha.example\r\nSubject: [...]\r\n\r\nsealed\r\n"
    )
    [entry] = entries(app)
    assert entry.state == "sent"


def test_a_maildir_transport_error_keeps_the_entry_for_later(app: App, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("in the way")
    queue_one(app)
    result = Worker(app, MaildirTransport(blocker / "maildir")).flush()
    assert (result.sent, result.retrying, result.failed) == (0, 1, 0)
    [entry] = entries(app)
    assert (entry.state, entry.attempts) == ("pending", 1)


def test_parallel_workers_store_a_teams_corrections_in_arrival_order(
    app: App, team: TeamClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three threads take the first report and two corrections. The first report's
    # decryption is held until both corrections have overtaken it: each waits for it
    # to commit or, were arrival order not kept, has committed already.
    first = team.submit(TYPE1.replace("Requests: 1204", "Requests: 1"))
    first_id, _ = accept(app.engine, first, "ingest")
    ahead: set[int] = set()  # the corrections that got past the first report
    overtaken = threading.Condition()
    held: list[bool] = []  # whether the first report's hold ended as it should
    real_unwrap, real_wait_for_older = app.unwrapper.unwrap, leases.wait_for_older

    def past_the_first(message_id: int) -> None:
        with overtaken:
            ahead.add(message_id)
            overtaken.notify_all()

    def held_for_the_first(raw: bytes) -> object:
        if raw.startswith(first[:200]):
            with overtaken:
                held.append(overtaken.wait_for(lambda: len(ahead) >= 2, timeout=60))
        return real_unwrap(raw)

    def waiting(engine: Engine, message_id: int, **kwargs: Any) -> bool:
        past_the_first(message_id)
        return real_wait_for_older(engine, message_id, **kwargs)

    def processed(app_: App, message_id: int, *args: Any, **kwargs: Any) -> Outcome:
        outcome = process_message(app_, message_id, *args, **kwargs)
        if message_id != first_id:
            past_the_first(message_id)
        return outcome

    monkeypatch.setattr(app.unwrapper, "unwrap", held_for_the_first)
    monkeypatch.setattr(leases, "wait_for_older", waiting)
    monkeypatch.setattr("gateway.worker.process_message", processed)
    for n in range(2, 5):
        accept(app.engine, team.submit(TYPE1.replace("Requests: 1204", f"Requests: {n}")), "ingest")
    worker = Worker(app, MaildirTransport(app.config.outbound.maildir), threads=3)
    assert worker.run_once() == {"accepted": 4}
    assert held == [True], "the corrections never overtook the first report"
    with open_session(app.engine) as s:
        rows = list_submissions(s)
    # Revision n holds the n-th message's figure: the newest revision is the last one sent.
    assert [(r.revision, r.message_id, r.values["requests"]) for r in rows] == [
        (n, n, n) for n in range(1, 5)
    ]


def test_a_message_that_failed_does_not_hold_back_newer_ones(
    app: App, team: TeamClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison, _ = accept(app.engine, b"Subject: poison\r\n\r\nx\r\n", "ingest")
    newer, _ = accept(app.engine, team.submit(TYPE1), "ingest")
    real_process = process_message

    def process(
        app_: App, message_id: int, owner: str | None = None, claimed: Spooled | None = None
    ) -> Outcome:
        if message_id == poison:
            raise RuntimeError("a bug that this message triggers")
        # The older message failed: it backs off, it is not "in flight" any more.
        assert not leases.older_in_flight(app_.engine, message_id)
        return real_process(app_, message_id, owner, claimed)

    monkeypatch.setattr("gateway.worker.process_message", process)
    assert worker.run_once() == {"error": 1, "accepted": 1}
    assert message(app, newer).state == "accepted"
    assert leases.claim_next_message(app.engine, "another") is None  # poison waits its turn


def test_only_the_first_concurrency_threads_take_a_large_message(
    app: App, app_with: Callable[..., App], team: TeamClient
) -> None:
    # Threads beyond `[worker] concurrency` take the oldest message only when it is
    # small, so no more large messages are in memory at once than gpg can work on.
    one_at_a_time = app_with(worker={"concurrency": 1})
    large_raw = b"Subject: x\r\n\r\n" + b"y" * pipeline.LARGE_MESSAGE_BYTES + b"\r\n"
    large, _ = accept(app.engine, large_raw, "ingest")
    small, _ = accept(app.engine, team.submit(TYPE1), "ingest")
    worker = Worker(one_at_a_time, MaildirTransport(app.config.outbound.maildir), threads=2)
    assert worker._claim(1) is None  # an extra thread: the oldest is large
    taken = worker._claim(0)
    assert taken is not None and (taken.id, taken.raw) == (large, None)
    again = worker._claim(1)
    assert again is not None and again.id == small and again.raw is not None
    # The large one is read when processed, and refused as it would be if read at once.
    assert worker.process_one(large, claimed=taken) is not None
    assert message(app, large).reason == "not-encrypted"
