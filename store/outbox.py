"""The durable outbox: sealed replies waiting for delivery, retried with backoff.

In: mails, each with a dedupe key naming the logical mail ("receipt:42"), added in the
same transaction as the outcome they report. Most arrive signed+encrypted (`pending`).
A reply to an incoming message arrives `unsealed` instead: its draft (recipient, key,
subject, body) commits with the outcome, and the worker seals it right after the commit,
outside the transaction, so the database is not held while gpg signs. An `unsealed`
entry is never delivered, listed for retry or handed to a transport; one whose worker
died is sealed by the next flush. Out: entries leased to one sender at a time (same
conditional-UPDATE claim as the spool), marked sent, or retried at growing intervals
until they are given up as `failed`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, func, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import defer
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from store.db import one_statement, one_statement_connection, open_session, transaction
from store.models import OutboxEntry, insert_values, new_row, table_of, utcnow
from store.spool import LeaseLostError, lease_free

UNSEALED = "unsealed"  # `raw` holds a draft, not a mail: seal it, never deliver it
PENDING = "pending"
SENT = "sent"
FAILED = "failed"

_FIRST_DELAY = timedelta(minutes=1)
_MAX_DELAY = timedelta(hours=6)

# The statements run for every reply, built once (see store.models.table_of).
_OUTBOX = table_of(OutboxEntry)
_NOW = bindparam("now", type_=_OUTBOX.c.lease_until.type)
_ENTRY = _OUTBOX.c.id == bindparam("entry_id")
_QUEUED = core_select(_OUTBOX.c.id).where(_OUTBOX.c.dedupe_key == bindparam("dedupe_key"))
_SEALED = {
    "raw": bindparam("raw"),
    "state": PENDING,
    "next_attempt_at": _NOW,
    "lease_owner": None,
    "lease_until": None,
}
_SEAL = update(_OUTBOX).where(_ENTRY, _OUTBOX.c.state == UNSEALED).values(_SEALED)
_SEAL_LEASED = (
    update(_OUTBOX)
    .where(
        _ENTRY,
        _OUTBOX.c.state == UNSEALED,
        (_OUTBOX.c.lease_owner == bindparam("owner")) | lease_free(_OUTBOX.c.lease_until, _NOW),
    )
    .values(_SEALED)
)
# A reply's draft is queued with one statement that skips a dedupe key queued already
# (reprocessing), instead of a look-up first, which on PostgreSQL could also lose a race
# and abort the whole processing transaction with a unique violation.
_QUEUE_NEW: dict[str, Insert] = {
    "sqlite": sqlite.insert(_OUTBOX)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(_OUTBOX.c.id),
    "postgresql": postgresql.insert(_OUTBOX)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(_OUTBOX.c.id),
}
_SENT = {"state": SENT, "sent_at": _NOW, "lease_owner": None, "lease_until": None}
_MARK_SENT = update(_OUTBOX).where(_ENTRY).values(_SENT)
_MARK_SENT_LEASED = (
    update(_OUTBOX)
    .where(_ENTRY, _OUTBOX.c.lease_owner == bindparam("owner"), _OUTBOX.c.state == PENDING)
    .values(_SENT)
)


def enqueue(
    session: Session,
    *,
    kind: str,
    recipient: str,
    raw: bytes,
    dedupe_key: str,
    message_id: int | None = None,
) -> OutboxEntry | None:
    """Add a sealed mail to the caller's transaction; None if `dedupe_key` is queued."""
    if already_queued(session, dedupe_key):
        return None
    entry = OutboxEntry(
        kind=kind,
        recipient=recipient,
        raw=raw,
        dedupe_key=dedupe_key,
        message_id=message_id,
    )
    session.add(entry)
    session.flush()
    return entry


def enqueue_unsealed(
    session: Session,
    *,
    kind: str,
    recipient: str,
    draft: bytes,
    dedupe_key: str,
    message_id: int | None = None,
    owner: str | None = None,
    lease_seconds: int = 300,
) -> int | None:
    """Add a draft for `seal` to the caller's transaction: its entry id, or None if a mail
    with `dedupe_key` was queued already.

    With `owner` (the worker that will seal it right after the commit), the entry is
    leased to that worker, so a concurrent flush does not seal it a second time.
    """
    lease_until = utcnow() + timedelta(seconds=lease_seconds) if owner else None
    row = new_row(
        OutboxEntry,
        kind=kind,
        recipient=recipient,
        raw=draft,
        dedupe_key=dedupe_key,
        message_id=message_id,
        state=UNSEALED,
        lease_owner=owner,
        lease_until=lease_until,
    )
    statement = _QUEUE_NEW.get(session.get_bind().dialect.name)
    if statement is None:  # another database: look first, then insert
        return (
            None
            if already_queued(session, dedupe_key)
            else insert_values(session, OutboxEntry, row)
        )
    new_id = session.execute(statement, row).scalar()
    return None if new_id is None else int(new_id)


def claim_unsealed(
    engine: Engine, owner: str, *, limit: int = 20, lease_seconds: int = 300
) -> list[tuple[int, bytes]]:
    """Lease drafts nobody is sealing (their worker died or failed) to `owner` (commits)."""
    now = utcnow()
    free = [col(OutboxEntry.state) == UNSEALED, lease_free(col(OutboxEntry.lease_until), now)]
    with open_session(engine) as session:  # the usual answer, without a write turn
        if session.exec(select(OutboxEntry.id).where(*free).limit(1)).first() is None:
            return []
    with transaction(engine) as session:
        candidates = session.exec(
            select(OutboxEntry.id, OutboxEntry.raw)
            .where(*free)
            .order_by(col(OutboxEntry.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        won = []
        for entry_id, draft in candidates:
            taken = session.exec(
                update(OutboxEntry)
                .where(col(OutboxEntry.id) == entry_id, *free)
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
            )
            if taken.rowcount == 1:
                won.append((entry_id or 0, draft))
        return won


def seal(engine: Engine, entry_id: int, raw: bytes, *, owner: str | None = None) -> bool:
    """Replace a draft by its sealed mail, due for delivery now (commits).

    False if it is sealed already, or leased to a sealer other than `owner`: that
    sealer's mail stands, and this one is dropped unsent.
    """
    sealed = {"entry_id": entry_id, "raw": raw, "now": utcnow()}
    with one_statement_connection(engine) as connection:
        if owner is None:
            result = connection.execute(_SEAL, sealed)
        else:
            result = connection.execute(_SEAL_LEASED, sealed | {"owner": owner})
        return result.rowcount == 1


def seal_failed(engine: Engine, entry_id: int, error: str, *, retry_seconds: int) -> None:
    """Count a failed sealing; the draft stays unsealed and is tried again later (commits)."""
    with one_statement(engine) as session:
        session.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.id) == entry_id, col(OutboxEntry.state) == UNSEALED)
            .values(
                attempts=col(OutboxEntry.attempts) + 1,
                last_error=error,
                lease_owner=None,
                lease_until=utcnow() + timedelta(seconds=retry_seconds),
            )
        )


def already_queued(session: Session, dedupe_key: str) -> bool:
    """Whether a mail with this dedupe key was ever queued (so sealing another is moot)."""
    return session.execute(_QUEUED, {"dedupe_key": dedupe_key}).first() is not None


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [
        col(OutboxEntry.state) == PENDING,
        col(OutboxEntry.next_attempt_at) <= now,
        lease_free(col(OutboxEntry.lease_until), now),
    ]


def claim_due(
    engine: Engine,
    owner: str,
    *,
    now: datetime | None = None,
    limit: int = 20,
    lease_seconds: int = 300,
) -> list[OutboxEntry]:
    """Lease up to `limit` due entries to `owner` (commits), oldest due first.

    One statement, like the spool's claim: an UPDATE of the rows a WITH query picks,
    which PostgreSQL locks (SKIP LOCKED: a competing sender picks others) and the
    UPDATE's own conditions re-check; it returns the rows it leased. (A WITH query that
    locks runs once; a locking subquery under IN could run again for each row updated,
    and lock more rows than `limit`.)
    """
    moment = now if now is not None else utcnow()
    due = _due(moment)
    oldest_due = (
        select(OutboxEntry.id)
        .where(*due)
        .order_by(col(OutboxEntry.next_attempt_at), col(OutboxEntry.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    lease = update(OutboxEntry).values(
        lease_owner=owner, lease_until=moment + timedelta(seconds=lease_seconds)
    )
    with one_statement(engine) as session:
        taken = session.scalars(
            lease.where(col(OutboxEntry.id).in_(select(oldest_due.c.id)), *due).returning(
                OutboxEntry
            ),
            execution_options={"synchronize_session": False},
        ).all()
    return sorted(taken, key=lambda entry: (entry.next_attempt_at, entry.id or 0))


def _held(entry_id: int, owner: str | None) -> ColumnElement[bool]:
    """This entry; with `owner`, only while that sender still holds its lease."""
    condition = col(OutboxEntry.id) == entry_id
    if owner is not None:
        condition &= (col(OutboxEntry.lease_owner) == owner) & (col(OutboxEntry.state) == PENDING)
    return condition


def _missing(session: Session, entry_id: int, owner: str | None) -> Exception:
    if session.get(OutboxEntry, entry_id) is None:
        return LookupError(f"no outbox entry {entry_id}")
    return LeaseLostError(f"outbox entry {entry_id} is no longer leased to {owner}")


def mark_sent(engine: Engine, entry_id: int, *, owner: str | None = None) -> None:
    """Record a delivery (commits).

    With `owner`, raises `LeaseLostError` unless that sender still holds the entry's
    lease: it held it too long, and another sender took the entry over.
    """
    sent = {"entry_id": entry_id, "now": utcnow()}
    with one_statement_connection(engine) as connection:
        if owner is None:
            result = connection.execute(_MARK_SENT, sent)
        else:
            result = connection.execute(_MARK_SENT_LEASED, sent | {"owner": owner})
        marked = result.rowcount == 1
    if not marked:
        with open_session(engine) as session:
            raise _missing(session, entry_id, owner)


def retry_delay(attempts: int, *, rng: Callable[[], float] = random.random) -> timedelta:
    """Wait after the `attempts`-th failure: 1 min, 2, 4, ... at most 6 h, jittered.

    The jitter takes up to 10 % off, so that a batch that failed together does not
    retry together, and each delay still exceeds the one before until the cap.
    """
    # The cap is reached after 9 doublings; the bound only keeps huge counts finite.
    doublings = min(max(attempts - 1, 0), 16)
    base = min(_FIRST_DELAY * (1 << doublings), _MAX_DELAY)
    return base * (1 - 0.1 * rng())


def mark_failed(
    engine: Engine, entry_id: int, error: str, *, max_attempts: int, owner: str | None = None
) -> str:
    """Count a failed delivery and schedule the next one (commits); returns the state.

    With `owner`, raises `LeaseLostError` unless that sender still holds the lease.
    """
    with transaction(engine) as session:
        # The increment is one UPDATE, so concurrent failures are all counted.
        attempts = session.exec(
            update(OutboxEntry)
            .where(_held(entry_id, owner))
            .values(
                attempts=col(OutboxEntry.attempts) + 1,
                last_error=error,
                lease_owner=None,
                lease_until=None,
            )
            .returning(col(OutboxEntry.attempts))
        ).scalar_one_or_none()
        if attempts is None:
            raise _missing(session, entry_id, owner)
        state = FAILED if attempts >= max_attempts else PENDING
        session.exec(
            update(OutboxEntry)
            .where(col(OutboxEntry.id) == entry_id)
            .values(state=state, next_attempt_at=utcnow() + retry_delay(attempts))
        )
        return state


def list_outbox(
    session: Session, *, state: str | None = None, with_raw: bool = True
) -> list[OutboxEntry]:
    """Entries in id order; with `with_raw=False` each one's sealed mail stays in the
    database until read in the session (a listing shows none of it: years of sent
    mail are most of the database)."""
    query = select(OutboxEntry).order_by(col(OutboxEntry.id))
    if not with_raw:
        query = query.options(defer(OutboxEntry.raw))  # type: ignore[arg-type]
    if state is not None:
        query = query.where(OutboxEntry.state == state)
    return list(session.exec(query))


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many mails wait for delivery (or sealing), and since when the oldest has waited."""
    query = select(func.count(), func.min(OutboxEntry.created_at)).where(
        col(OutboxEntry.state).in_((PENDING, UNSEALED))
    )
    count, oldest = session.exec(query).one()
    return count, oldest


def retry_failed(session: Session) -> int:
    """Give every failed mail a fresh series of attempts, due now; returns how many."""
    result = session.exec(
        update(OutboxEntry)
        .where(col(OutboxEntry.state) == FAILED)
        .values(
            state=PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            lease_owner=None,
            lease_until=None,
        )
    )
    return result.rowcount
