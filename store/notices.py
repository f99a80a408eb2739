"""What the gateway has told a team lately, and which refusals were replays.

In: a session and a team (its id, its registered address). Out: how many notices of
some kinds were queued to the team since a moment (`notices_since`: the hourly limit),
whether a reply of a kind was already queued for the same signed content
(`answered_before`: an identical content is answered once), and, for the coordinator
summary, the refusals of a month that were replays (`replayed_refusals`): content the
team's key had signed before (the same content hash from the same team, earlier), or
content signed long before it arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from contract.codes import Reason, State
from store.models import Message, OutboxEntry, Team

REFUSED = (State.REJECTED, State.DUPLICATE, State.QUARANTINED)


def notices_since(session: Session, recipient: str, kinds: Iterable[str], since: datetime) -> int:
    """Outbox entries of `kinds` to `recipient` created since `since`."""
    query = select(func.count()).where(
        col(OutboxEntry.recipient) == recipient,
        col(OutboxEntry.kind).in_(list(kinds)),
        col(OutboxEntry.created_at) >= since,
    )
    return int(session.exec(query).one())


def answered_before(
    session: Session, team_id: int, content_sha256: str, kind: str, message_id: int
) -> int | None:
    """The message (other than `message_id`) of this team with this signed content to
    which a `kind` reply was queued; None if there is none."""
    query = (
        select(Message.id)
        .join(OutboxEntry, col(OutboxEntry.message_id) == col(Message.id))
        .where(
            col(Message.team_id) == team_id,
            col(Message.content_sha256) == content_sha256,
            col(Message.id) != message_id,
            col(OutboxEntry.kind) == kind,
        )
        .order_by(col(Message.id))
        .limit(1)
    )
    return session.exec(query).first()


@dataclass(frozen=True)
class Replayed:
    """Refusals of one team, state and reason in a month that were replays."""

    team: str
    state: str
    reason: str | None
    count: int


def replayed_refusals(
    session: Session, start: datetime, end: datetime, *, signed_before: timedelta
) -> list[Replayed]:
    """Refused messages received in [start, end), with a team, that were replays: their
    signed content came from that team before, or was signed more than `signed_before`
    before the message arrived, or its signature was stale (outside the freshness
    window). Counted by team, state and reason."""
    earlier = aliased(Message)
    seen_before = (
        select(earlier.id)
        .where(
            col(earlier.team_id) == col(Message.team_id),
            col(earlier.content_sha256) == col(Message.content_sha256),
            col(earlier.id) < col(Message.id),
        )
        .exists()
    )
    query = (
        select_columns(
            col(Team.handle),
            col(Message.state),
            col(Message.reason),
            col(Message.received_at),
            col(Message.signed_at),
            seen_before,
        )
        .select_from(Message)
        .join(Team, col(Team.id) == col(Message.team_id))
        .where(
            col(Message.state).in_(REFUSED),
            col(Message.received_at) >= start,
            col(Message.received_at) < end,
            col(Message.content_sha256).is_not(None),
        )
    )
    counts: dict[tuple[str, str, str | None], int] = {}
    for handle, state, reason, received, signed, seen in session.execute(query):
        old = signed is not None and _aware(signed) < _aware(received) - signed_before
        if seen or old or reason == Reason.STALE_SIGNATURE:
            counts[(handle, state, reason)] = counts.get((handle, state, reason), 0) + 1
    return [Replayed(t, s, r, n) for (t, s, r), n in sorted(counts.items(), key=str)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
