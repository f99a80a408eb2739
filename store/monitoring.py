"""Read-only queries for watching the service: metrics and `clearinghouse health`.

In: a session. Out: counts and times, never message content. Each is one aggregate
query, cheap enough to run on every Prometheus scrape.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from contract.codes import State
from store.models import Message, MonthlyRun, OutboxEntry
from store.outbox import PENDING, UNSEALED


def outbox_by_state(session: Session) -> dict[str, int]:
    """Outbox entries per state (pending, sent, failed)."""
    query = select(OutboxEntry.state, func.count()).group_by(col(OutboxEntry.state))
    return {state: count for state, count in session.exec(query)}


def oldest_received(session: Session) -> datetime | None:
    """When the oldest message still waiting to be processed arrived."""
    query = select(func.min(Message.received_at)).where(Message.state == State.RECEIVED)
    return session.exec(query).one()


def last_monthly_run(session: Session) -> datetime | None:
    """When `report monthly` last completed (it records a run only when it got through)."""
    return session.exec(select(func.max(MonthlyRun.ran_at))).one()


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many mails wait for delivery (or sealing), and since when the oldest has waited."""
    query = select(func.count(), func.min(OutboxEntry.created_at)).where(
        col(OutboxEntry.state).in_((PENDING, UNSEALED))
    )
    count, oldest = session.exec(query).one()
    return count, oldest


def list_outbox(
    session: Session, *, state: str | None = None, with_raw: bool = True
) -> list[OutboxEntry]:
    """The outbox's entries, oldest first (`outbox list`); only those in `state` if given.
    With `with_raw=False` each one's sealed mail stays in the database until read (a
    listing shows none of it: years of sent mail are most of the database)."""
    query = select(OutboxEntry).order_by(col(OutboxEntry.id))
    if not with_raw:
        query = query.options(defer(OutboxEntry.raw))  # type: ignore[arg-type]
    if state is not None:
        query = query.where(OutboxEntry.state == state)
    return list(session.exec(query))
