"""What the spool keeps, and for how long: raw bytes past their retention, and the bytes
each SMTP client has stored in the last hour.

In: an engine, the retention periods (`[retention]`) or a client address. Out: the
messages whose raw bytes are due for deletion (`due_for_purge`), their deletion
(`purge`: the bytes go, the record stays with its state, reason, hashes and size), and
the messages and bytes a client stored in the last hour (`stored_by_client`, for the
door's quotas).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, update
from sqlmodel import col, select

from contract.codes import State
from store.db import open_session, transaction
from store.models import Message, utcnow

REFUSED = (State.QUARANTINED, State.REJECTED, State.DUPLICATE)
_BATCH = 500  # messages purged per transaction: a first purge may meet years of spool


@dataclass(frozen=True)
class Due:
    """A message whose raw bytes are past their retention."""

    id: int
    state: str
    size: int
    received_at: datetime


def stored_by_client(engine: Engine, client: str, *, hours: int = 1) -> tuple[int, int]:
    """Messages and bytes stored from `client` (an SMTP client address) in the last
    `hours` hours."""
    since = utcnow() - timedelta(hours=hours)
    query = select(func.count(), func.coalesce(func.sum(Message.size), 0)).where(
        col(Message.client_address) == client, col(Message.received_at) >= since
    )
    with open_session(engine) as session:
        count, size = session.exec(query).one()
        return int(count), int(size)


def due_for_purge(
    engine: Engine, *, refused_days: int, accepted_days: int, now: datetime | None = None
) -> list[Due]:
    """Processed messages whose raw bytes are past retention, oldest first (0 days: kept).

    Refused messages (quarantined, rejected, duplicate) are counted from their arrival;
    accepted ones too. Messages still `received` are never due.
    """
    now = now or utcnow()
    periods = [(REFUSED, refused_days), ((State.ACCEPTED,), accepted_days)]
    due: list[Due] = []
    with open_session(engine) as session:
        for states, days in periods:
            if days <= 0:
                continue
            query = (
                select(Message.id, Message.state, Message.size, Message.received_at)
                .where(
                    col(Message.state).in_(states),
                    col(Message.received_at) < now - timedelta(days=days),
                    col(Message.purged_at).is_(None),
                )
                .order_by(col(Message.id))
            )
            due += [Due(int(i or 0), s, z, r) for i, s, z, r in session.exec(query)]
    return sorted(due, key=lambda d: d.id)


def purge(engine: Engine, ids: Sequence[int], progress: Callable[[int], None] | None = None) -> int:
    """Delete the raw bytes of these messages, keeping their records; how many.

    In transactions of `_BATCH` messages; `progress` is told each batch's size.
    """
    done = 0
    for start in range(0, len(ids), _BATCH):
        batch = list(ids[start : start + _BATCH])
        with transaction(engine) as session:
            result = session.exec(
                update(Message)
                .where(col(Message.id).in_(batch), col(Message.purged_at).is_(None))
                .values(raw=b"", purged_at=utcnow())
            )
            done += result.rowcount
        if progress is not None:
            progress(len(batch))
    return done
