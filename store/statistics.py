"""The queries behind the monthly statistics: what counts, what arrived, what ran.

In: a range of periods ("YYYY-MM", compared as strings, which orders them correctly) or
a time range. Out: plain frozen rows, no ORM objects, so that `reports/statistics.py`
can aggregate them without a session: the newest revision of every (team, type, period)
with its values, every revision with its storage time, message counts by state and
reason, and the record of earlier monthly runs. Reads only, except `record_run`; never
commits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from store.models import Message, MonthlyRun, OutboxEntry, Submission, Team, Type1Value, Type2Count

Category = tuple[str, str | None]  # (class slug, type slug or None for class-only)


@dataclass(frozen=True)
class StoredReport:
    """The revision of (team, type, period) that counts: the newest one."""

    submission_id: int
    team_id: int
    team: str  # handle
    type: str  # type1 | type2
    period: str
    revision: int
    created_at: datetime
    type1: dict[str, Decimal] = field(default_factory=dict)  # field -> value
    type2: dict[Category, int] = field(default_factory=dict)  # category -> count


@dataclass(frozen=True)
class RevisionRow:
    """One stored revision, whichever counts; for the coordinators' "late" list."""

    submission_id: int
    team: str
    type: str
    period: str
    revision: int
    created_at: datetime


@dataclass(frozen=True)
class MessageCount:
    state: str
    reason: str | None
    team: str | None  # handle; None when unauthenticated
    count: int


def newest_reports(session: Session, first: str, last: str) -> list[StoredReport]:
    """The newest revision of every (team, type, period) with first <= period <= last.

    Three queries whatever the number of rows: the submissions, their type 1 values and
    their type 2 counts. Ordered by period, type, team id.
    """
    newest = (
        select(
            col(Submission.team_id),
            col(Submission.type),
            col(Submission.period),
            func.max(Submission.revision).label("revision"),
        )
        .where(col(Submission.period) >= first, col(Submission.period) <= last)
        .group_by(col(Submission.team_id), col(Submission.type), col(Submission.period))
        .subquery()
    )
    query = (
        select(Submission, Team.handle)
        .join(
            newest,
            (col(Submission.team_id) == newest.c.team_id)
            & (col(Submission.type) == newest.c.type)
            & (col(Submission.period) == newest.c.period)
            & (col(Submission.revision) == newest.c.revision),
        )
        .join(Team, col(Team.id) == col(Submission.team_id))
        .order_by(col(Submission.period), col(Submission.type), col(Submission.team_id))
    )
    found = list(session.exec(query))
    ids = [sub.id for sub, _ in found if sub.id is not None]
    type1, type2 = _values(session, ids)
    return [
        StoredReport(
            submission_id=sub.id or 0,
            team_id=sub.team_id,
            team=handle,
            type=sub.type,
            period=sub.period,
            revision=sub.revision,
            created_at=sub.created_at,
            type1=type1.get(sub.id or 0, {}),
            type2=type2.get(sub.id or 0, {}),
        )
        for sub, handle in found
    ]


def _values(
    session: Session, ids: list[int]
) -> tuple[dict[int, dict[str, Decimal]], dict[int, dict[Category, int]]]:
    type1: defaultdict[int, dict[str, Decimal]] = defaultdict(dict)
    type2: defaultdict[int, dict[Category, int]] = defaultdict(dict)
    if not ids:
        return type1, type2
    for value in session.exec(select(Type1Value).where(col(Type1Value.submission_id).in_(ids))):
        # NUMERIC(14, 2) reads back exactly (two decimals); normalise 940.50 -> 940.5.
        type1[value.submission_id][value.field] = Decimal(value.value).normalize()
    for count in session.exec(select(Type2Count).where(col(Type2Count.submission_id).in_(ids))):
        key = (count.class_slug, count.type_slug)
        per = type2[count.submission_id]
        per[key] = per.get(key, 0) + count.count
    return type1, type2


def revisions(session: Session, first: str, last: str) -> list[RevisionRow]:
    """Every stored revision for first <= period <= last, oldest stored first."""
    query = (
        select(Submission, Team.handle)
        .join(Team, col(Team.id) == col(Submission.team_id))
        .where(col(Submission.period) >= first, col(Submission.period) <= last)
        .order_by(col(Submission.created_at), col(Submission.id))
    )
    return [
        RevisionRow(sub.id or 0, handle, sub.type, sub.period, sub.revision, sub.created_at)
        for sub, handle in session.exec(query)
    ]


def message_counts(session: Session, start: datetime, end: datetime) -> list[MessageCount]:
    """Messages received in [start, end), counted by state, reason and team."""
    query = (
        select(Message.state, Message.reason, Team.handle, func.count())
        .select_from(Message)
        .outerjoin(Team, col(Team.id) == col(Message.team_id))
        .where(col(Message.received_at) >= start, col(Message.received_at) < end)
        .group_by(col(Message.state), col(Message.reason), col(Team.handle))
    )
    rows = [
        MessageCount(state, reason, handle, count)
        for state, reason, handle, count in session.exec(query)
    ]
    return sorted(rows, key=lambda r: (r.state, r.reason or "", r.team or ""))


def queued_keys(session: Session, keys: list[str]) -> set[str]:
    """Which of these outbox dedupe keys are queued already (in any state)."""
    if not keys:
        return set()
    query = select(OutboxEntry.dedupe_key).where(col(OutboxEntry.dedupe_key).in_(keys))
    return set(session.exec(query))


def newest_generation(session: Session, period: str) -> int:
    """The mailing generation of the newest run for `period` (0 if none ran yet)."""
    query = select(func.max(MonthlyRun.generation)).where(MonthlyRun.period == period)
    found = session.exec(query).one()
    return int(found or 0)


def record_run(
    session: Session, *, period: str, generation: int, sent: bool, queued: int, digest: str
) -> MonthlyRun:
    run = MonthlyRun(period=period, generation=generation, sent=sent, queued=queued, digest=digest)
    session.add(run)
    session.flush()
    return run


def list_runs(session: Session, period: str | None = None) -> list[MonthlyRun]:
    query = select(MonthlyRun).order_by(col(MonthlyRun.id))
    if period is not None:
        query = query.where(MonthlyRun.period == period)
    return list(session.exec(query))
