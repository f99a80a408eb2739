"""The spool: raw incoming messages, their leases and their processing outcome.

In: raw RFC 5322 bytes from a door (SMTP, IMAP, `ingest`). Out: message ids that
workers claim one at a time, and the final state each message ends in. The
`message` table is the spool, so several gateways sharing PostgreSQL share it too.

Claiming never relies on locks alone: a worker picks a candidate and then takes it
with a conditional UPDATE whose row count says whether it won. That is correct on
SQLite (one writer at a time) and on PostgreSQL, where `FOR UPDATE SKIP LOCKED`
additionally keeps competing workers off the same candidate.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, insert, null, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, defer
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from store.db import (
    commits_so_far,
    one_statement,
    one_statement_connection,
    open_session,
    transaction,
    wait_for_commit,
)
from store.models import Message, new_row, table_of, utcnow
from store.registry import BOUND_KEY, BoundKey, normalize_fingerprint

RECEIVED = "received"
FINAL_STATES = frozenset({"accepted", "rejected", "duplicate", "quarantined"})

# A lost race means someone else made progress, so the loop ends quickly in practice;
# the bound only guards against a livelock nobody foresaw.
_MAX_CLAIM_TRIES = 50


class LeaseLostError(RuntimeError):
    """The worker finishing a message no longer holds its lease (it expired)."""


def spool_message(
    engine: Engine,
    raw: bytes,
    channel: str,
    *,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
    intake_key: str | None = None,
) -> tuple[int, bool]:
    """Store one message durably (commits). Returns (id, False) for a known intake_key."""
    if intake_key is not None:
        known = _id_for_intake_key(engine, intake_key)
        if known is not None:
            return known, False
    row = _new_row(Incoming(raw, channel, envelope_from, tuple(envelope_to)), intake_key)
    try:
        [message_id] = _insert(engine, [row])
    except IntegrityError:
        # Another door stored the same intake_key between our lookup and our insert.
        known = None if intake_key is None else _id_for_intake_key(engine, intake_key)
        if known is None:
            raise
        return known, False
    return message_id, True


@dataclass(frozen=True)
class Incoming:
    """A message a door has received and not yet stored."""

    raw: bytes
    channel: str
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()


def spool_messages(engine: Engine, incoming: Sequence[Incoming]) -> list[int]:
    """Store several messages with one commit: all of them, or none."""
    return _insert(engine, [_new_row(one, None) for one in incoming])


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> list[int]:
    """Commit new message rows, all or none; their ids, in the order of `rows`.

    The rows go in as one INSERT ... RETURNING (SQLAlchemy's "insertmanyvalues" writes
    up to a page of rows into one statement), which on PostgreSQL runs in autocommit:
    one round trip for a door's whole group instead of BEGIN, INSERT and COMMIT, each
    waiting for a server process on a busy machine. More rows than one statement takes
    go in a transaction instead.
    """
    dialect = engine.dialect
    one = len(rows) <= dialect.insertmanyvalues_page_size and (
        len(rows) * len(_MESSAGE.c) <= dialect.insertmanyvalues_max_parameters
    )
    writing = one_statement if one else transaction
    with writing(engine, urgent=True) as session:  # a door waits to say 250
        return [int(i) for i in session.execute(_INSERT_MESSAGES, rows).scalars()]


def _new_row(incoming: Incoming, intake_key: str | None) -> dict[str, Any]:
    return new_row(
        Message,
        channel=incoming.channel,
        raw=incoming.raw,
        raw_sha256=hashlib.sha256(incoming.raw).hexdigest(),
        size=len(incoming.raw),
        envelope_from=incoming.envelope_from,
        envelope_to=",".join(incoming.envelope_to) or None,
        intake_key=intake_key,
    )


def envelope_recipients(message: Message) -> list[str]:
    """The SMTP envelope recipients as stored by `spool_message`."""
    return message.envelope_to.split(",") if message.envelope_to else []


def _id_for_intake_key(engine: Engine, intake_key: str) -> int | None:
    with open_session(engine) as session:
        query = select(Message.id).where(Message.intake_key == intake_key)
        return session.exec(query).first()


def lease_free(
    lease_until: Mapped[datetime | None] | ColumnElement[datetime | None],
    now: datetime | ColumnElement[datetime],
) -> ColumnElement[bool]:
    """SQL condition: nobody holds the lease, or its holder let it expire."""
    return or_(lease_until.is_(None), lease_until < now)


# The statements run for every message, built once (see store.models.table_of).
_MESSAGE = table_of(Message)
_INSERT_MESSAGES = insert(_MESSAGE).returning(_MESSAGE.c.id, sort_by_parameter_order=True)
_NOW = bindparam("now", type_=_MESSAGE.c.lease_until.type)
_CLAIMABLE = (_MESSAGE.c.state == RECEIVED) & lease_free(_MESSAGE.c.lease_until, _NOW)
_OLDEST_CLAIMABLE = (
    core_select(_MESSAGE.c.id)
    .where(_CLAIMABLE)
    .order_by(_MESSAGE.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_TAKE_OLDEST = (
    update(_MESSAGE)
    .where(_MESSAGE.c.id == _OLDEST_CLAIMABLE, _CLAIMABLE)
    .values(
        lease_owner=bindparam("owner"),
        lease_until=bindparam("until", type_=_MESSAGE.c.lease_until.type),
        attempts=_MESSAGE.c.attempts + 1,
    )
)
# What processing reads, returned by the claim itself: the bytes only within the cap.
_WITHIN_CAP = case((_MESSAGE.c.size <= bindparam("max_bytes"), _MESSAGE.c.raw), else_=null())
_READ_WITH_CLAIM = (_MESSAGE.c.id, _MESSAGE.c.size, _MESSAGE.c.received_at, _WITHIN_CAP)
_CLAIM_NEXT_READ = _TAKE_OLDEST.returning(*_READ_WITH_CLAIM)
# The same, only if the oldest is no larger than `only_up_to` (never a newer one instead).
_CLAIM_NEXT_SMALL_READ = _TAKE_OLDEST.where(_MESSAGE.c.size <= bindparam("only_up_to")).returning(
    *_READ_WITH_CLAIM
)
_OLDEST_CLAIMABLE_SIZE = (
    core_select(_MESSAGE.c.size).where(_CLAIMABLE).order_by(_MESSAGE.c.id).limit(1)
)
_OLDER_IN_FLIGHT = (
    core_select(_MESSAGE.c.id)
    .where(
        _MESSAGE.c.id < bindparam("message_id"),
        _MESSAGE.c.state == RECEIVED,
        _MESSAGE.c.lease_owner.is_not(None),  # held by a worker, not backing off
        _MESSAGE.c.lease_until >= _NOW,
    )
    .limit(1)
)
_ACCEPTED_CONTENT = (
    core_select(_MESSAGE.c.id)
    .where(
        _MESSAGE.c.state == "accepted",
        _MESSAGE.c.team_id == bindparam("team_id"),
        _MESSAGE.c.content_sha256 == bindparam("content_sha256"),
    )
    .order_by(_MESSAGE.c.id)
    .limit(1)
)
_FOR_PROCESSING = core_select(_MESSAGE.c.size, _MESSAGE.c.received_at, _WITHIN_CAP).where(
    _MESSAGE.c.id == bindparam("message_id")
)
_OUTCOME = {
    "state": bindparam("state"),
    "reason": bindparam("reason"),
    "detail": bindparam("detail"),
    "team_id": bindparam("team_id"),
    "signer_fingerprint": bindparam("signer_fingerprint"),
    "content_sha256": bindparam("content_sha256"),
    "processed_at": bindparam("processed_at", type_=_MESSAGE.c.processed_at.type),
    "lease_owner": None,
    "lease_until": None,
}
_FINISH = update(_MESSAGE).where(_MESSAGE.c.id == bindparam("message_id")).values(_OUTCOME)
_FINISH_LEASED = (
    update(_MESSAGE)
    .where(
        _MESSAGE.c.id == bindparam("message_id"),
        _MESSAGE.c.lease_owner == bindparam("owner"),
        _MESSAGE.c.state == RECEIVED,
    )
    .values(_OUTCOME)
)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return (col(Message.state) == RECEIVED) & lease_free(col(Message.lease_until), now)


def _lease(owner: str, now: datetime, lease_seconds: int) -> dict[str, object]:
    """What taking a message's lease writes: its holder, until when, one more attempt."""
    return {
        "lease_owner": owner,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "attempts": col(Message.attempts) + 1,
    }


def _claim(session: Session, message_id: int, owner: str, lease_seconds: int) -> bool:
    """The conditional UPDATE that takes the lease; True if this caller won it."""
    now = utcnow()
    won = session.exec(
        update(Message)
        .where(col(Message.id) == message_id, _claimable(now))
        .values(_lease(owner, now, lease_seconds))
    )
    return bool(won.rowcount == 1)


def claim_next_message(engine: Engine, owner: str, lease_seconds: int = 300) -> int | None:
    """Lease the oldest unprocessed message to `owner` (commits); None if there is none.

    One statement: an UPDATE of the row its subquery picks, which PostgreSQL locks
    (SKIP LOCKED: a competing worker picks the next one) and the UPDATE's own condition
    re-checks. Zero rows with a candidate left means a lost race: look again.
    """
    taken = claim_next(engine, owner, lease_seconds, inline_bytes=0)  # reads no bytes
    return None if taken is None else taken.id


def claim_next(
    engine: Engine,
    owner: str,
    lease_seconds: int,
    inline_bytes: int,
    *,
    only_up_to: int | None = None,
) -> Spooled | None:
    """`claim_next_message`, returning what processing reads: the message's size and
    arrival, and its bytes if they are no more than `inline_bytes`.

    With `only_up_to`, the oldest message is taken only if it is no larger than that;
    a larger one is left for another claimer, and nothing newer is taken instead, so
    messages are still taken in the order they arrived.
    """
    statement, params = _CLAIM_NEXT_READ, {"max_bytes": inline_bytes}
    if only_up_to is not None:
        statement, params = _CLAIM_NEXT_SMALL_READ, params | {"only_up_to": only_up_to}
    taken = _claim_oldest(engine, statement, params, owner, lease_seconds, only_up_to)
    if taken is None:
        return None
    return Spooled(int(taken[0]), int(taken[1]), taken[2], taken[3])


def _claim_oldest(
    engine: Engine,
    statement: Executable,
    params: dict[str, Any],
    owner: str,
    lease_seconds: int,
    only_up_to: int | None = None,
) -> tuple[Any, ...] | None:
    for _ in range(_MAX_CLAIM_TRIES):
        now = utcnow()
        lease = {"now": now, "owner": owner, "until": now + timedelta(seconds=lease_seconds)}
        with one_statement_connection(engine) as connection:
            taken = connection.execute(statement, params | lease).first()
        if taken is not None:
            return tuple(taken)
        oldest = _oldest_claimable_size(engine)
        if oldest is None or (only_up_to is not None and oldest > only_up_to):
            return None  # nothing to take (for this claimer); else a lost race: again
    return None


def oldest_larger(engine: Engine, size: int) -> bool:
    """Whether the oldest message waiting to be claimed is larger than `size` bytes."""
    oldest = _oldest_claimable_size(engine)
    return oldest is not None and oldest > size


def _oldest_claimable_size(engine: Engine) -> int | None:
    with open_session(engine) as session:
        size = session.execute(_OLDEST_CLAIMABLE_SIZE, {"now": utcnow()}).scalar()
        return None if size is None else int(size)


def claim_message(engine: Engine, message_id: int, owner: str, lease_seconds: int = 300) -> bool:
    """Lease one given unprocessed message to `owner` if it is free (commits)."""
    with one_statement(engine) as session:
        return _claim(session, message_id, owner, lease_seconds)


def older_in_flight(engine: Engine, message_id: int) -> bool:
    """Whether an older message is still being processed under a live lease."""
    with open_session(engine) as session:
        found = session.execute(_OLDER_IN_FLIGHT, {"message_id": message_id, "now": utcnow()})
        return found.first() is not None


# The signer's binding and the arrival-order check, which processing makes one after the
# other, in one round trip.
_BOUND_KEY_AND_OLDER = BOUND_KEY.add_columns(_OLDER_IN_FLIGHT.exists())


def binding_and_older_in_flight(
    session: Session | Connection, fingerprint: str, message_id: int
) -> tuple[BoundKey | None, bool]:
    """`team_for_fingerprint(fingerprint)`, and whether a message older than `message_id`
    is in flight (`older_in_flight`), read together; (None, False) for an unbound key."""
    params = {"fingerprint": normalize_fingerprint(fingerprint), "message_id": message_id}
    found = session.execute(_BOUND_KEY_AND_OLDER, params | {"now": utcnow()}).first()
    if found is None:
        return None, False
    *bound, older = found
    return BoundKey(*bound), bool(older)


def wait_for_older(engine: Engine, message_id: int, *, timeout: float, poll: float = 0.05) -> bool:
    """Wait until no older message is in flight, so that outcomes commit in arrival order.

    Parallel workers decrypt and verify side by side; a team's correction must still not
    be stored before the report it corrects. A commit in this process wakes the wait at
    once; an older message held by another instance is looked at again every `poll`
    seconds. Returns False on timeout (the older message's worker is stuck; its lease
    will expire and the caller goes ahead).
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = commits_so_far(engine)
        if not older_in_flight(engine, message_id):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        wait_for_commit(engine, seen, min(poll, left))


def back_off(engine: Engine, message_id: int, owner: str, seconds: int) -> None:
    """After a failed attempt: nobody holds the message, and nobody claims it for a while."""
    with one_statement(engine) as session:
        session.exec(
            update(Message)
            .where(col(Message.id) == message_id, col(Message.lease_owner) == owner)
            .values(lease_owner=None, lease_until=utcnow() + timedelta(seconds=seconds))
        )


def release_message(engine: Engine, message_id: int, owner: str) -> None:
    """Give a claimed message back for another attempt (commits); no-op if not ours."""
    with one_statement(engine) as session:
        session.exec(
            update(Message)
            .where(col(Message.id) == message_id, col(Message.lease_owner) == owner)
            .values(lease_owner=None, lease_until=None)
        )


def finish_message(
    session: Session,
    message_id: int,
    *,
    state: str,
    reason: str | None,
    detail: str | None = None,
    team_id: int | None = None,
    signer_fingerprint: str | None = None,
    content_sha256: str | None = None,
    owner: str | None = None,
) -> None:
    """Record a message's outcome and drop its lease, in the caller's transaction.

    With `owner`, raises `LeaseLostError` unless that worker still holds the lease;
    the UPDATE then keeps the row locked until the caller commits, so a worker that
    reclaimed an expired lease cannot record a second outcome.
    """
    if state not in FINAL_STATES:
        raise ValueError(f"not a final message state: {state!r}")
    outcome = {
        "message_id": message_id,
        "state": state,
        "reason": reason,
        "detail": detail,
        "team_id": team_id,
        "signer_fingerprint": signer_fingerprint,
        "content_sha256": content_sha256,
        "processed_at": utcnow(),
    }
    if owner is None:
        done = session.connection().execute(_FINISH, outcome)
    else:
        done = session.connection().execute(_FINISH_LEASED, outcome | {"owner": owner})
    if done.rowcount != 1:
        if session.get(Message, message_id) is None:
            raise LookupError(f"no message {message_id}")
        raise LeaseLostError(f"message {message_id} is no longer leased to {owner}")


# Loads a message row without its bytes until they are read.
_LAZY_RAW = defer(Message.raw)  # type: ignore[arg-type]  # sqlmodel types it as bytes


def get_message(session: Session, message_id: int, *, raw: bool = True) -> Message | None:
    """The message; with `raw=False` its bytes stay in the database until they are read."""
    if raw:
        return session.get(Message, message_id)
    return session.get(Message, message_id, options=[_LAZY_RAW])


@dataclass
class Spooled:
    """A claimed message as processing reads it: id, size, arrival, and its bytes once."""

    id: int
    size: int
    received_at: datetime
    raw: bytes | None = field(default=None, repr=False)  # None: larger than the cap

    def take_raw(self) -> bytes:
        """The bytes, handed over: the receiver can let them go, this object holds none."""
        raw, self.raw = self.raw, None
        if raw is None:
            raise ValueError(f"message {self.id}: bytes not read, or taken already")
        return raw


def read_for_processing(session: Session, message_id: int, max_bytes: int) -> Spooled:
    """The message's size and arrival, and its bytes unless it is larger than `max_bytes`.

    One statement: a message over the cap is quarantined without its bytes ever
    leaving the database.
    """
    params = {"message_id": message_id, "max_bytes": max_bytes}
    found = session.execute(_FOR_PROCESSING, params).first()
    if found is None:
        raise LookupError(f"message {message_id} does not exist")
    size, received_at, raw = found
    return Spooled(message_id, int(size), received_at, raw)


def list_messages(
    session: Session, *, state: str | None = None, limit: int | None = None
) -> list[Message]:
    """Messages in id order (the first `limit`), without loading `raw` until it is read."""
    query = select(Message).options(_LAZY_RAW).order_by(col(Message.id))
    if state is not None:
        query = query.where(Message.state == state)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def count_by_state(session: Session) -> dict[str, int]:
    """Messages per state: every message is counted (an index scan over all of them)."""
    query = select(Message.state, func.count()).group_by(col(Message.state))
    return {state: count for state, count in session.exec(query)}


def count_in_state(session: Session, state: str) -> int:
    """Messages in one state, counted in that state's part of the index only: for the
    spool's backlog (`received`) or the quarantine, where `count_by_state` would count
    years of accepted messages too."""
    query = select(func.count()).select_from(Message).where(col(Message.state) == state)
    return int(session.exec(query).one())


def _requeue_values() -> dict[str, object]:
    # An admin's reprocess is a fresh start: the outcome and the attempt count go.
    return {
        "state": RECEIVED,
        "reason": None,
        "detail": None,
        "team_id": None,
        "signer_fingerprint": None,
        "content_sha256": None,
        "processed_at": None,
        "attempts": 0,
        "lease_owner": None,
        "lease_until": None,
    }


def requeue_message(session: Session, message_id: int) -> bool:
    """Put a message back to `received` for reprocessing; False if there is no such id."""
    result = session.exec(
        update(Message).where(col(Message.id) == message_id).values(_requeue_values())
    )
    return result.rowcount == 1


def requeue_quarantined(session: Session) -> list[int]:
    """Requeue every quarantined message; returns their ids in order."""
    result = session.exec(
        update(Message)
        .where(col(Message.state) == "quarantined")
        .values(_requeue_values())
        .returning(col(Message.id))
    )
    return sorted(row[0] for row in result)


def find_accepted_content(session: Session, team_id: int, content_sha256: str) -> int | None:
    """The id of the first accepted message of `team_id` with this signed-content hash."""
    params = {"team_id": team_id, "content_sha256": content_sha256}
    return session.execute(_ACCEPTED_CONTENT, params).scalar()
