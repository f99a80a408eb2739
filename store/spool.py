"""The spool: raw incoming messages and their processing outcome.

In: raw RFC 5322 bytes from a door (SMTP, IMAP, `ingest`). Out: message ids, what
processing reads of a message, and the final state each message ends in. The `message`
table is the spool, so several gateways sharing PostgreSQL share it too; which worker
holds which message is `store/leases.py`'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, case, func, insert, null, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from contract.codes import FINAL_STATES, Reason, State
from contract.errors import LeaseLostError
from store.db import (
    one_statement,
    open_session,
    transaction,
)
from store.models import Message, new_row, table_of, utcnow

RECEIVED = State.RECEIVED


def spool_message(
    engine: Engine,
    raw: bytes,
    channel: str,
    *,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
    intake_key: str | None = None,
    sender_domain: str | None = None,
) -> tuple[int, bool]:
    """Store one message durably (commits). Returns (id, False) for a known intake_key."""
    if intake_key is not None:
        known = _id_for_intake_key(engine, intake_key)
        if known is not None:
            return known, False
    incoming = Incoming(raw, channel, envelope_from, tuple(envelope_to), sender_domain)
    row = _new_row(incoming, intake_key)
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
    sender_domain: str | None = None  # of the outer From (keys/headers.py)
    client_address: str | None = None  # the SMTP client's (an IPv6 client's /64)


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
        sender_domain=incoming.sender_domain,
        client_address=incoming.client_address,
    )


def envelope_recipients(message: Message) -> list[str]:
    """The SMTP envelope recipients as stored by `spool_message`."""
    return message.envelope_to.split(",") if message.envelope_to else []


def _id_for_intake_key(engine: Engine, intake_key: str) -> int | None:
    with open_session(engine) as session:
        query = select(Message.id).where(Message.intake_key == intake_key)
        return session.exec(query).first()


# The statements run for every message, built once (see store.models.table_of).
_MESSAGE = table_of(Message)
_INSERT_MESSAGES = insert(_MESSAGE).returning(_MESSAGE.c.id, sort_by_parameter_order=True)
_NOW = bindparam("now", type_=_MESSAGE.c.lease_until.type)
# What processing reads, returned by the claim itself: the bytes only within the cap.
BYTES_WITHIN_CAP = case((_MESSAGE.c.size <= bindparam("max_bytes"), _MESSAGE.c.raw), else_=null())
_ACCEPTED_CONTENT = (
    core_select(_MESSAGE.c.id)
    .where(
        _MESSAGE.c.state == State.ACCEPTED,
        _MESSAGE.c.team_id == bindparam("team_id"),
        _MESSAGE.c.content_sha256 == bindparam("content_sha256"),
    )
    .order_by(_MESSAGE.c.id)
    .limit(1)
)
_FOR_PROCESSING = core_select(_MESSAGE.c.size, _MESSAGE.c.received_at, BYTES_WITHIN_CAP).where(
    _MESSAGE.c.id == bindparam("message_id")
)
_OUTCOME = {
    "state": bindparam("state"),
    "reason": bindparam("reason"),
    "detail": bindparam("detail"),
    "team_id": bindparam("team_id"),
    "signer_fingerprint": bindparam("signer_fingerprint"),
    "content_sha256": bindparam("content_sha256"),
    "signed_at": bindparam("signed_at", type_=_MESSAGE.c.signed_at.type),
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


def finish_message(
    session: Session,
    message_id: int,
    *,
    state: State,
    reason: Reason | None,
    detail: str | None = None,
    team_id: int | None = None,
    signer_fingerprint: str | None = None,
    content_sha256: str | None = None,
    owner: str | None = None,
    signed_at: datetime | None = None,
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
        "signed_at": signed_at,
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
    session: Session, *, state: State | None = None, limit: int | None = None
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
        "signed_at": None,
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
        .where(col(Message.state) == State.QUARANTINED, col(Message.purged_at).is_(None))
        .values(_requeue_values())
        .returning(col(Message.id))
    )
    return sorted(row[0] for row in result)


def find_accepted_content(session: Session, team_id: int, content_sha256: str) -> int | None:
    """The id of the first accepted message of `team_id` with this signed-content hash."""
    params = {"team_id": team_id, "content_sha256": content_sha256}
    return session.execute(_ACCEPTED_CONTENT, params).scalar()
