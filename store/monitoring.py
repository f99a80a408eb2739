"""Read-only queries for watching the service: metrics and `clearinghouse health`.

In: a session. Out: counts and times, never message content. Each is one aggregate
query, cheap enough to run on every Prometheus scrape.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from contract.codes import State
from store.models import Message, MonthlyRun, OutboxEntry


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
