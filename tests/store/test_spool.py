"""The spool: durable intake, idempotency, leases, outcomes and requeueing."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from contract.codes import Reason, State
from contract.errors import LeaseLostError
from gateway.spool import MAX_GROUP
from store import leases, registry, spool
from store.db import open_session, transaction
from store.models import Message, TeamKey, utcnow
from store.registry import BoundKey

RAW = b"From: a@b.example\r\nSubject: stats\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n"


def _expire_lease(engine: Engine, message_id: int) -> None:
    with transaction(engine) as session:
        session.exec(
            update(Message)
            .where(col(Message.id) == message_id)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )


def test_a_group_of_messages_is_stored_with_one_statement_in_order(engine: Engine) -> None:
    # A door's group: its ids come back in the order the messages were given; on
    # PostgreSQL as one INSERT ... RETURNING in autocommit (one round trip, no BEGIN and
    # COMMIT). SQLite's RETURNING order is not defined: there SQLAlchemy inserts a row at
    # a time, in one transaction (whole or not at all: the test below).
    executed: list[tuple[str, object]] = []

    def seen(conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        # psycopg's `autocommit` is a bool. (sqlite3's is -1, "legacy", from Python 3.12 on.)
        dbapi = conn.connection.dbapi_connection
        executed.append((statement.split()[0].upper(), getattr(dbapi, "autocommit", None)))

    # As many as a door puts in one group.
    incoming = [spool.Incoming(RAW + f"{n}\r\n".encode(), "smtp") for n in range(MAX_GROUP)]
    # On every engine: on PostgreSQL, autocommit statements run on a pool of their own.
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        ids = spool.spool_messages(engine, incoming)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    if engine.dialect.name == "postgresql":
        assert executed == [("INSERT", True)]
    else:
        assert {statement for statement, _ in executed} == {"INSERT"}
    with open_session(engine) as session:
        stored = [spool.get_message(session, i) for i in ids]
    assert [m.raw if m else None for m in stored] == [one.raw for one in incoming]
    assert ids == sorted(ids)


def test_a_group_of_messages_is_stored_whole_or_not_at_all(engine: Engine) -> None:
    fine = [spool.Incoming(RAW + f"{n}\r\n".encode(), "smtp") for n in range(MAX_GROUP - 1)]
    # The last one breaks a NOT NULL constraint, in the database, after the others went in.
    broken = spool.Incoming(RAW + b"broken\r\n", None)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        spool.spool_messages(engine, [*fine, broken])
    with open_session(engine) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == 0
    assert len(spool.spool_messages(engine, fine)) == len(fine)  # the store goes on working


def test_spool_stores_raw_bytes_hash_and_envelope(engine: Engine) -> None:
    message_id, created = spool.spool_message(
        engine,
        RAW,
        "smtp",
        envelope_from="a@b.example",
        envelope_to=["stats@ch.example", "other@ch.example"],
    )
    assert created
    with open_session(engine) as session:
        message = spool.get_message(session, message_id)
    assert message is not None
    assert message.raw == RAW
    assert message.raw_sha256 == hashlib.sha256(RAW).hexdigest()
    assert message.size == len(RAW)
    assert message.channel == "smtp"
    assert message.state == "received"
    assert message.envelope_from == "a@b.example"
    assert spool.envelope_recipients(message) == ["stats@ch.example", "other@ch.example"]


def test_spool_intake_key_is_idempotent(engine: Engine) -> None:
    first = spool.spool_message(engine, RAW, "imap", intake_key="INBOX:<m1>:abc")
    again = spool.spool_message(engine, b"different", "imap", intake_key="INBOX:<m1>:abc")
    other = spool.spool_message(engine, RAW, "imap", intake_key="INBOX:<m2>:abc")
    assert first[1] and not again[1] and other[1]
    assert again[0] == first[0] != other[0]
    with open_session(engine) as session:
        assert spool.count_by_state(session) == {"received": 2}


def test_spool_without_intake_key_always_stores(engine: Engine) -> None:
    ids = {spool.spool_message(engine, RAW, "ingest")[0] for _ in range(3)}
    assert len(ids) == 3


def test_spool_intake_key_race_stores_once(engine: Engine) -> None:
    threads = 6
    barrier = threading.Barrier(threads)

    def spool_it(n: int) -> tuple[int, bool]:
        barrier.wait()
        return spool.spool_message(engine, RAW + bytes([n]), "imap", intake_key="k")

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(spool_it, range(threads)))
    assert sum(created for _, created in results) == 1
    assert len({message_id for message_id, _ in results}) == 1
    with open_session(engine) as session:
        assert len(spool.list_messages(session)) == 1


def test_claim_takes_oldest_and_counts_attempts(
    engine: Engine, new_message_id: Callable[..., int]
) -> None:
    first, second = new_message_id(), new_message_id()
    assert leases.claim_next_message(engine, "w1") == first
    assert leases.claim_next_message(engine, "w2") == second
    assert leases.claim_next_message(engine, "w3") is None
    with open_session(engine) as session:
        message = spool.get_message(session, first)
    assert message is not None
    assert message.lease_owner == "w1"
    assert message.attempts == 1
    assert message.lease_until is not None and message.lease_until > utcnow()


def test_claim_never_hands_one_message_to_two_workers(
    engine: Engine, new_message_id: Callable[..., int]
) -> None:
    ids = {new_message_id(b"m%d" % n) for n in range(24)}
    workers = 4
    barrier = threading.Barrier(workers)

    def drain(owner: str) -> list[int]:
        barrier.wait()
        claimed = []
        while (message_id := leases.claim_next_message(engine, owner)) is not None:
            claimed.append(message_id)
        return claimed

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(drain, [f"w{n}" for n in range(workers)]))
    everything = [message_id for claimed in results for message_id in claimed]
    assert sorted(everything) == sorted(ids)
    with open_session(engine) as session:
        assert all(m.attempts == 1 for m in spool.list_messages(session))


def test_expired_lease_can_be_reclaimed(engine: Engine, new_message_id: Callable[..., int]) -> None:
    message_id = new_message_id()
    assert leases.claim_next_message(engine, "crashed") == message_id
    assert leases.claim_next_message(engine, "w2") is None
    _expire_lease(engine, message_id)
    assert leases.claim_next_message(engine, "w2") == message_id
    with open_session(engine) as session:
        message = spool.get_message(session, message_id)
    assert message is not None
    assert (message.lease_owner, message.attempts) == ("w2", 2)


def test_release_only_by_the_owner(engine: Engine, new_message_id: Callable[..., int]) -> None:
    message_id = new_message_id()
    assert leases.claim_next_message(engine, "w1") == message_id
    leases.release_message(engine, message_id, "someone-else")
    assert leases.claim_next_message(engine, "w2") is None
    leases.release_message(engine, message_id, "w1")
    assert leases.claim_next_message(engine, "w2") == message_id


def test_finish_records_outcome_in_the_callers_transaction(
    engine: Engine, new_message_id: Callable[..., int], new_team_id: Callable[[str], int]
) -> None:
    team_id = new_team_id("cert-a")
    message_id = new_message_id()
    assert leases.claim_next_message(engine, "w1") == message_id
    with pytest.raises(RuntimeError), transaction(engine) as session:
        spool.finish_message(
            session, message_id, state=State.ACCEPTED, reason=None, team_id=team_id
        )
        raise RuntimeError("the caller's transaction rolls back: so does the outcome")
    with open_session(engine) as session:
        assert spool.count_by_state(session) == {"received": 1}
    with transaction(engine) as session:
        spool.finish_message(
            session,
            message_id,
            state=State.ACCEPTED,
            reason=None,
            detail="ok",
            team_id=team_id,
            signer_fingerprint="AB" * 20,
            content_sha256="c" * 64,
            owner="w1",
        )
    with open_session(engine) as session:
        message = spool.get_message(session, message_id)
    assert message is not None
    assert (message.state, message.team_id, message.detail) == ("accepted", team_id, "ok")
    assert message.signer_fingerprint == "AB" * 20
    assert message.processed_at is not None
    assert message.lease_owner is None and message.lease_until is None
    assert leases.claim_next_message(engine, "w2") is None


def test_finish_refuses_lost_lease_unknown_id_and_bad_state(
    engine: Engine, new_message_id: Callable[..., int]
) -> None:
    message_id = new_message_id()
    assert leases.claim_next_message(engine, "slow") == message_id
    _expire_lease(engine, message_id)
    assert leases.claim_next_message(engine, "fast") == message_id
    with open_session(engine) as session:
        with pytest.raises(LeaseLostError):
            spool.finish_message(
                session,
                message_id,
                state=State.QUARANTINED,
                reason=Reason.BAD_SIGNATURE,
                owner="slow",
            )
        with pytest.raises(LookupError):
            spool.finish_message(
                session, 999_999, state=State.QUARANTINED, reason=Reason.BAD_SIGNATURE
            )
        with pytest.raises(ValueError, match="final"):
            spool.finish_message(session, message_id, state=State.RECEIVED, reason=None)


def test_requeue_message_resets_outcome(
    engine: Engine, new_message_id: Callable[..., int], new_team_id: Callable[[str], int]
) -> None:
    team_id = new_team_id("cert-a")
    message_id = new_message_id()
    leases.claim_next_message(engine, "w1")
    with transaction(engine) as session:
        spool.finish_message(
            session,
            message_id,
            state=State.QUARANTINED,
            reason=Reason.UNKNOWN_KEY,
            detail="no key",
            team_id=team_id,
        )
    with transaction(engine) as session:
        assert spool.requeue_message(session, message_id)
        assert not spool.requeue_message(session, 999_999)
    with open_session(engine) as session:
        message = spool.get_message(session, message_id)
    assert message is not None
    assert (message.state, message.reason, message.detail) == ("received", None, None)
    assert (message.team_id, message.attempts, message.lease_owner) == (None, 0, None)
    assert leases.claim_next_message(engine, "w2") == message_id


def test_requeue_quarantined_only_touches_quarantined(
    engine: Engine, new_message_id: Callable[..., int]
) -> None:
    ids = [new_message_id(b"m%d" % n) for n in range(4)]
    outcomes = [State.QUARANTINED, State.REJECTED, State.QUARANTINED, State.ACCEPTED]
    with transaction(engine) as session:
        for message_id, state in zip(ids, outcomes, strict=True):
            spool.finish_message(session, message_id, state=state, reason=None)
    with transaction(engine) as session:
        assert spool.requeue_quarantined(session) == [ids[0], ids[2]]
    with open_session(engine) as session:
        assert spool.count_by_state(session) == {
            "received": 2,
            "rejected": 1,
            "accepted": 1,
        }
        assert spool.requeue_quarantined(session) == []


def test_list_messages_filters_orders_and_limits(
    engine: Engine, new_message_id: Callable[..., int]
) -> None:
    ids = [new_message_id(b"m%d" % n) for n in range(5)]
    with transaction(engine) as session:
        spool.finish_message(session, ids[1], state=State.QUARANTINED, reason=Reason.NOT_SIGNED)
        spool.finish_message(session, ids[3], state=State.QUARANTINED, reason=Reason.NOT_SIGNED)
    with open_session(engine) as session:
        assert [m.id for m in spool.list_messages(session)] == ids
        assert [m.id for m in spool.list_messages(session, limit=2)] == ids[:2]
        quarantined = spool.list_messages(session, state=State.QUARANTINED)
        assert [m.id for m in quarantined] == [ids[1], ids[3]]
        assert quarantined[0].raw == b"m1"  # deferred, loaded on access
        assert spool.list_messages(session, state=State.ACCEPTED) == []
        assert spool.get_message(session, 999_999) is None


def test_find_accepted_content(
    engine: Engine, new_message_id: Callable[..., int], new_team_id: Callable[[str], int]
) -> None:
    team_a, team_b = new_team_id("cert-a"), new_team_id("cert-b")
    accepted, rejected, other_team = (new_message_id(b"m%d" % n) for n in range(3))
    digest = "d" * 64
    with transaction(engine) as session:
        for message_id, state, team in [
            (accepted, State.ACCEPTED, team_a),
            (rejected, State.REJECTED, team_a),
            (other_team, State.ACCEPTED, team_b),
        ]:
            spool.finish_message(
                session,
                message_id,
                state=state,
                reason=None,
                team_id=team,
                content_sha256=digest if message_id != other_team else "e" * 64,
            )
    with open_session(engine) as session:
        assert spool.find_accepted_content(session, team_a, digest) == accepted
        assert spool.find_accepted_content(session, team_b, digest) is None
        assert spool.find_accepted_content(session, team_a, "f" * 64) is None


def test_the_claim_returns_what_processing_reads_and_the_bytes_only_within_the_cap(
    engine: Engine,
) -> None:
    small, _ = spool.spool_message(engine, RAW, "smtp")
    large, _ = spool.spool_message(engine, RAW + b"x" * 100, "smtp")
    cap = len(RAW) + 50
    first = leases.claim_next(engine, "w1", 300, cap)
    assert first is not None and (first.id, first.size) == (small, len(RAW))
    assert first.take_raw() == RAW
    with pytest.raises(ValueError, match="taken already"):
        first.take_raw()  # handed over: the claim holds no copy
    second = leases.claim_next(engine, "w1", 300, cap)
    assert second is not None and (second.id, second.size, second.raw) == (
        large,
        len(RAW) + 100,
        None,
    )
    assert leases.claim_next(engine, "w2", 300, cap) is None  # both are leased now
    with open_session(engine) as session:
        message = spool.get_message(session, large)
        again = spool.read_for_processing(session, large, 10 * cap)
        with pytest.raises(LookupError):
            spool.read_for_processing(session, 999_999, cap)
    assert message is not None and (message.lease_owner, message.attempts) == ("w1", 1)
    assert again.received_at == message.received_at and again.raw == message.raw


def test_a_small_only_claim_never_takes_a_newer_message_past_a_large_oldest(
    engine: Engine,
) -> None:
    large, _ = spool.spool_message(engine, RAW + b"x" * 1000, "smtp")
    small, _ = spool.spool_message(engine, RAW, "smtp")
    limit = len(RAW) + 10
    assert leases.oldest_larger(engine, limit)
    # Arrival order holds: the small message behind the large one is not taken instead.
    assert leases.claim_next(engine, "extra", 300, limit, only_up_to=limit) is None
    first = leases.claim_next(engine, "primary", 300, limit)
    assert first is not None and (first.id, first.raw) == (large, None)  # read later
    assert not leases.oldest_larger(engine, limit)
    second = leases.claim_next(engine, "extra", 300, limit, only_up_to=limit)
    assert second is not None and (second.id, second.raw) == (small, RAW)
    assert not leases.oldest_larger(engine, limit)  # nothing left at all


def test_the_binding_comes_with_the_arrival_order_check(
    engine: Engine, new_team_id: Callable[[str], int], new_message_id: Callable[..., int]
) -> None:
    # Processing reads the signer's binding and whether an older message is still in
    # flight in one round trip: the same answers as the two look-ups on their own.
    team_id = new_team_id("cert-bound")
    with transaction(engine) as session:
        registry.add_key(session, TeamKey(fingerprint="ab12", team_id=team_id))
    older, newer = new_message_id(), new_message_id()

    def both(message_id: int, fingerprint: str = "AB12") -> tuple[BoundKey | None, bool]:
        with open_session(engine) as session:
            found, in_flight = leases.binding_and_older_in_flight(session, fingerprint, message_id)
            assert found == registry.team_for_fingerprint(session, fingerprint)
        if found is not None:
            assert in_flight == leases.older_in_flight(engine, message_id)
        return found, in_flight

    assert both(newer)[1] is False  # the older one is not claimed yet
    assert leases.claim_next_message(engine, "w1") == older
    found, in_flight = both(newer)
    assert in_flight is True
    assert found is not None and (found.team_id, found.handle) == (team_id, "cert-bound")
    assert both(older)[1] is False  # nothing older than the oldest
    assert both(newer, "CD34") == (None, False)  # an unbound key: quarantined, no waiting
    leases.back_off(engine, older, "w1", 60)  # no longer in flight: backing off
    assert both(newer)[1] is False
