"""Leases on spooled messages: which worker holds which message, and until when.

In: a worker's name (`owner`). Out: the oldest unprocessed message, leased to that
worker for `lease_seconds`, or nothing. Claiming never relies on locks alone: a worker
picks a candidate and then takes it with a conditional UPDATE whose row count says
whether it won. That is correct on SQLite (one writer at a time) and on PostgreSQL, where
`FOR UPDATE SKIP LOCKED` additionally keeps competing workers off the same candidate. A
worker that dies lets its messages go when their leases expire; one whose attempt failed
backs off. The outbox leases its entries with the same rule (`lease_free`).

Arrival order is kept among the messages of one sending domain (the outer From's,
recorded at intake): with `[policy] sender_binding` on, a team's messages all come from
its registered domain, so a message waits only for older ones of that domain, and a
slow message from elsewhere (one built to keep gpg busy) holds no other team's report.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import Mapped
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from store.db import one_statement, one_statement_connection, open_session
from store.models import Message, table_of, utcnow
from store.registry import BOUND_KEY, BoundKey, normalize_fingerprint
from store.spool import BYTES_WITHIN_CAP, RECEIVED, Spooled
from store.write_turns import commits_so_far, wait_for_commit

# A lost race means someone else made progress, so the loop ends quickly in practice;
# the bound only guards against a livelock nobody foresaw.
# The statements run for every message, built once (see store.models.table_of).
_MESSAGE = table_of(Message)
_NOW = bindparam("now", type_=_MESSAGE.c.lease_until.type)

_MAX_CLAIM_TRIES = 50


def lease_free(
    lease_until: Mapped[datetime | None] | ColumnElement[datetime | None],
    now: datetime | ColumnElement[datetime],
) -> ColumnElement[bool]:
    """SQL condition: nobody holds the lease, or its holder let it expire."""
    return or_(lease_until.is_(None), lease_until < now)


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


_READ_WITH_CLAIM = (_MESSAGE.c.id, _MESSAGE.c.size, _MESSAGE.c.received_at, BYTES_WITHIN_CAP)


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


# The same, among messages of one sending domain (or of none recorded: older rows).
_OLDER_IN_FLIGHT_OF_DOMAIN = _OLDER_IN_FLIGHT.where(
    or_(_MESSAGE.c.sender_domain.is_(None), _MESSAGE.c.sender_domain == bindparam("domain"))
)


def _older(domain: str | None) -> Select[Any]:
    return _OLDER_IN_FLIGHT if domain is None else _OLDER_IN_FLIGHT_OF_DOMAIN


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


def older_in_flight(engine: Engine, message_id: int, domain: str | None = None) -> bool:
    """Whether an older message (of sending domain `domain`, if given) is still being
    processed under a live lease."""
    params = {"message_id": message_id, "now": utcnow(), "domain": domain}
    with open_session(engine) as session:
        return session.execute(_older(domain), params).first() is not None


# The signer's binding and the arrival-order check, which processing makes one after the
# other, in one round trip.
_BOUND_KEY_AND_OLDER = {
    False: BOUND_KEY.add_columns(_OLDER_IN_FLIGHT.exists()),
    True: BOUND_KEY.add_columns(_OLDER_IN_FLIGHT_OF_DOMAIN.exists()),
}


def binding_and_older_in_flight(
    session: Session | Connection, fingerprint: str, message_id: int, domain: str | None = None
) -> tuple[BoundKey | None, bool]:
    """`team_for_fingerprint(fingerprint)`, and whether a message older than `message_id`
    is in flight (`older_in_flight`), read together; (None, False) for an unbound key."""
    params = {"fingerprint": normalize_fingerprint(fingerprint), "message_id": message_id}
    statement = _BOUND_KEY_AND_OLDER[domain is not None]
    found = session.execute(statement, params | {"now": utcnow(), "domain": domain}).first()
    if found is None:
        return None, False
    *bound, older = found
    return BoundKey(*bound), bool(older)


def wait_for_older(
    engine: Engine,
    message_id: int,
    *,
    timeout: float,
    poll: float = 0.05,
    domain: str | None = None,
) -> bool:
    """Wait until no older message (of `domain`, if given) is in flight, so that outcomes
    commit in arrival order.

    Parallel workers decrypt and verify side by side; a team's correction must still not
    be stored before the report it corrects. A commit in this process wakes the wait at
    once; an older message held by another instance is looked at again every `poll`
    seconds. Returns False on timeout (the older message's worker is stuck; its lease
    will expire and the caller goes ahead).
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = commits_so_far(engine)
        if not older_in_flight(engine, message_id, domain):
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
