"""The queries behind the monthly statistics: what counts, what arrived, what ran.

In: a range of periods ("YYYY-MM", compared as strings, which orders them correctly) or
a time range. Out: plain frozen rows, no ORM objects, so that `reports/statistics.py`
can aggregate them without a session: the newest revision of every (team, type, period)
with its values (type 2: each count as sent and as counted when stored, so that the
statistics can count in any canonical vocabulary), every revision with its storage time,
message counts by state and reason, and the record of earlier monthly runs. Reads only,
except `record_run`; never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeVarTuple

from sqlalchemy import Row, Select, Subquery, func
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from store.models import Message, MonthlyRun, OutboxEntry, Submission, Team, Type1Value, Type2Count
from store.type2 import COLUMNS as TYPE2_COLUMNS
from store.type2 import StoredCount

Category = tuple[str, str | None]  # (class slug, type slug or None for class-only)
Columns = TypeVarTuple("Columns")


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
    type2: dict[Category, int] = field(default_factory=dict)  # category -> count, as stored
    # type 2: each count as sent and as counted when stored; empty for reports built
    # without them (then `type2` is taken to be in the canonical vocabulary)
    type2_counts: tuple[StoredCount, ...] = ()


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
    their type 2 counts. Ordered by period, type, team id. They select plain columns, not
    ORM objects: building a model instance per value row cost 15 us each, most of the
    statistics run's query time (a thousand teams have 280,000 values in a window).
    """
    newest = _newest(first, last)
    query = (
        select_columns(
            newest.c.id,
            newest.c.team_id,
            col(Team.handle),
            newest.c.type,
            newest.c.period,
            newest.c.revision,
            newest.c.created_at,
        )
        .join(Team, col(Team.id) == newest.c.team_id)
        .order_by(newest.c.period, newest.c.type, newest.c.team_id)
    )
    found = _rows(session, query)
    type1, type2, type2_counts = _values(session, newest)
    return [
        StoredReport(
            submission_id=sub_id,
            team_id=team_id,
            team=handle,
            type=report_type,
            period=period,
            revision=revision,
            created_at=created_at,
            type1=type1.get(sub_id, {}),
            type2=type2.get(sub_id, {}),
            type2_counts=tuple(type2_counts.get(sub_id, ())),
        )
        for sub_id, team_id, handle, report_type, period, revision, created_at in found
    ]


def _newest(first: str, last: str) -> Subquery:
    """The newest revisions in the range (id, team_id, type, period, revision,
    created_at), as a subquery to join on.

    Joined rather than passed as an IN list: a thousand teams make 24,000 ids, too many
    bound parameters for some databases. Ranked within the range's rows only, which
    carry every column the statistics need: the newest revision found by a join back to
    `submission` on (team, type, period, revision) made PostgreSQL read the whole table,
    every year of it, each run.
    """
    newest_first = func.row_number().over(
        partition_by=(col(Submission.team_id), col(Submission.type), col(Submission.period)),
        order_by=col(Submission.revision).desc(),
    )
    ranked = (
        select_columns(
            col(Submission.id),
            col(Submission.team_id),
            col(Submission.type),
            col(Submission.period),
            col(Submission.revision),
            col(Submission.created_at),
            newest_first.label("rank"),
        )
        .where(col(Submission.period) >= first, col(Submission.period) <= last)
        .subquery()
    )
    columns = [c for c in ranked.c if c.name != "rank"]
    return select_columns(*columns).where(ranked.c.rank == 1).subquery()


def _values(
    session: Session, newest: Subquery
) -> tuple[
    dict[int, dict[str, Decimal]], dict[int, dict[Category, int]], dict[int, list[StoredCount]]
]:
    type1: defaultdict[int, dict[str, Decimal]] = defaultdict(dict)
    type2: defaultdict[int, dict[Category, int]] = defaultdict(dict)
    type2_counts: defaultdict[int, list[StoredCount]] = defaultdict(list)
    values = (
        select_columns(col(Type1Value.submission_id), col(Type1Value.field), col(Type1Value.value))
        .join(newest, newest.c.id == col(Type1Value.submission_id))
        .order_by(col(Type1Value.submission_id), col(Type1Value.field))
    )
    for submission_id, name, value in _rows(session, values):
        # NUMERIC(14, 2) reads back exactly (two decimals); normalise 940.50 -> 940.5.
        type1[submission_id][name] = Decimal(value).normalize()
    counts = (
        select_columns(col(Type2Count.submission_id), *TYPE2_COLUMNS)
        .join(newest, newest.c.id == col(Type2Count.submission_id))
        .order_by(col(Type2Count.submission_id), col(Type2Count.id))
    )
    for submission_id, *row in _rows(session, counts):
        stored = StoredCount.of_row(row)
        type2_counts[submission_id].append(stored)
        per = type2[submission_id]
        per[stored.counted.target] = per.get(stored.counted.target, 0) + stored.count
    return type1, type2, type2_counts


def revisions(session: Session, first: str, last: str) -> list[RevisionRow]:
    """Every stored revision for first <= period <= last, oldest stored first."""
    query = (
        select_columns(
            col(Submission.id),
            col(Team.handle),
            col(Submission.type),
            col(Submission.period),
            col(Submission.revision),
            col(Submission.created_at),
        )
        .join(Team, col(Team.id) == col(Submission.team_id))
        .where(col(Submission.period) >= first, col(Submission.period) <= last)
        .order_by(col(Submission.created_at), col(Submission.id))
    )
    return [
        RevisionRow(sub_id or 0, handle, report_type, period, revision, created_at)
        for sub_id, handle, report_type, period, revision, created_at in _rows(session, query)
    ]


def _rows(session: Session, query: Select[*Columns]) -> Sequence[Row[*Columns]]:
    """Plain rows of a column query, run on the session's connection (and transaction)."""
    return session.connection().execute(query).all()


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
