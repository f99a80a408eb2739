"""Stored reports: each one a new revision of (team, type, period), with its values.

In: validated `Type1Report`/`Type2Report` records and the message they came in.
Out: `Submission` rows (revision N supersedes N-1; earlier revisions are kept, the
newest counts), their values read back exactly, and flat rows for listings.

Workers (threads, or gateway instances sharing PostgreSQL) store one team's messages
one at a time: `lock_team` holds the team until the storing transaction commits, so
the next one sees its revision and its accepted content (for duplicates). The unique
constraint on (team, type, period, revision) stays as the backstop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from parsers.model import TYPE1_FIELDS, Report, Type1Report
from store.models import (
    Submission,
    Team,
    TeamKey,
    Type1Value,
    Type2Count,
    new_row,
    table_of,
)
from store.registry import (
    KEY_DATES_COLUMNS,
    KEYS_IN_BINDING_ORDER,
    TEAM_COLUMNS,
    KeyDates,
    TeamRow,
    key_dates_of_team,
)

Values = dict[str, Decimal] | dict[str, int]

# Type1Value.value is NUMERIC(14, 2): two decimals, twelve digits before the point.
_CENT = Decimal("0.01")
_TYPE1_LIMIT = Decimal(10) ** 12
_FIELD_ORDER = {name: index for index, name in enumerate(TYPE1_FIELDS)}

# Run for every stored report, so built once: a statement object caches its compiled form.
_TEAMS, _KEYS = table_of(Team), table_of(TeamKey)
_TEAM = _TEAMS.c.id == bindparam("team_id")
_LOCK_TEAM_SQLITE = (
    update(_TEAMS).where(_TEAM).values(status=_TEAMS.c.status).returning(*TEAM_COLUMNS)
)
# PostgreSQL locks the team and reads its keys (for the reply) in one statement.
_LOCK_TEAM_WITH_KEYS = (
    core_select(*TEAM_COLUMNS, *KEY_DATES_COLUMNS)
    .select_from(_TEAMS.outerjoin(_KEYS, _KEYS.c.team_id == _TEAMS.c.id))
    .where(_TEAM)
    .order_by(*KEYS_IN_BINDING_ORDER)
    .with_for_update(key_share=True, of=_TEAMS)
)
_SUBMISSIONS = table_of(Submission)
_OF_REPORT = (
    _SUBMISSIONS.c.team_id == bindparam("team_id"),
    _SUBMISSIONS.c.type == bindparam("type"),
    _SUBMISSIONS.c.period == bindparam("period"),
)
_LATEST = select(Submission).where(*_OF_REPORT).order_by(col(Submission.revision).desc()).limit(1)
# What storing a report runs, as plain Core: no ORM object per value row. The new
# submission is numbered by the statement that inserts it: one round trip, not a look-up
# of the newest revision and then an INSERT (the caller holds the team, `lock_team`).
# (An INSERT keeps its columns' names for the values: the look-ups take their own.)
_EARLIER = (
    _SUBMISSIONS.c.team_id == bindparam("of_team"),
    _SUBMISSIONS.c.type == bindparam("of_type"),
    _SUBMISSIONS.c.period == bindparam("of_period"),
)
_INSERT_NEXT_REVISION = (
    insert(_SUBMISSIONS)
    .values(
        revision=func.coalesce(
            core_select(func.max(_SUBMISSIONS.c.revision)).where(*_EARLIER).scalar_subquery(), 0
        )
        + 1,
        supersedes_id=core_select(_SUBMISSIONS.c.id)
        .where(*_EARLIER)
        .order_by(_SUBMISSIONS.c.revision.desc())
        .limit(1)
        .scalar_subquery(),
    )
    .returning(_SUBMISSIONS.c.id, _SUBMISSIONS.c.revision, _SUBMISSIONS.c.supersedes_id)
)
_TYPE1, _TYPE2 = table_of(Type1Value), table_of(Type2Count)
_INSERT_TYPE1, _INSERT_TYPE2 = insert(_TYPE1), insert(_TYPE2)
_STORED_TYPE1 = core_select(_TYPE1.c.field, _TYPE1.c.value).where(
    _TYPE1.c.submission_id == bindparam("submission_id")
)
_STORED_TYPE2 = (
    core_select(_TYPE2.c.class_slug, _TYPE2.c.type_slug, _TYPE2.c.count)
    .where(_TYPE2.c.submission_id == bindparam("submission_id"))
    .order_by(_TYPE2.c.id)
)


@dataclass(frozen=True)
class SubmissionRow:
    """One submission as listings and `submissions list --json` show it."""

    id: int
    team: str  # the team's handle
    type: str
    period: str
    revision: int
    message_id: int
    supersedes_id: int | None
    created_at: datetime
    values: Values


@dataclass(frozen=True)
class LockedTeam:
    """A team held by the caller's transaction, as it is now, with its keys."""

    row: TeamRow
    keys: list[KeyDates]  # as `key_dates_of_team` gives them


def lock_team(session: Session, team_id: int) -> LockedTeam | None:
    """Hold team `team_id` for the caller's transaction, until it commits or rolls back;
    its row and keys as they are now, or None if there is no such team.

    PostgreSQL locks the row (FOR NO KEY UPDATE, so rows referring to the team can still
    be written) with the statement that reads it and its keys; SQLite has no row locks,
    so a no-op write takes its one write lock, and the keys are read after it.
    """
    params = {"team_id": team_id}
    if session.get_bind().dialect.name == "sqlite":
        found = session.execute(_LOCK_TEAM_SQLITE, params).first()
        if found is None:
            return None
        return LockedTeam(TeamRow(*found), key_dates_of_team(session, team_id))
    rows = session.execute(_LOCK_TEAM_WITH_KEYS, params).all()
    if not rows:
        return None
    width = len(TEAM_COLUMNS)
    keys = [KeyDates(*row[width:]) for row in rows if row[width] is not None]
    return LockedTeam(TeamRow(*rows[0][:width]), keys)


@dataclass(frozen=True)
class StoredSubmission:
    """What `store_report` wrote: the new submission's id and where it stands."""

    id: int
    type: str
    period: str
    revision: int
    supersedes_id: int | None
    created_at: datetime


def store_report(
    session: Session, team_id: int, report: Report, message_id: int
) -> StoredSubmission:
    """Add `report` as the next revision for its team, type and period (no commit).

    Raises ValueError, before writing anything, for a type 1 value that NUMERIC(14, 2)
    would change (more than two decimals, or 10**12 and above).
    """
    if isinstance(report, Type1Report):
        for value in report.values.values():
            _check_storable(value)
    row = new_row(
        Submission,
        team_id=team_id,
        type=report.type,
        period=report.period,
        revision=0,  # numbered by the statement
        message_id=message_id,
        source=report.source,
    )
    del row["revision"], row["supersedes_id"]
    earlier = {"of_team": team_id, "of_type": report.type, "of_period": report.period}
    inserted = session.execute(_INSERT_NEXT_REVISION, row | earlier).one()
    submission_id, revision, supersedes_id = inserted
    _insert_values(session, submission_id, report)
    return StoredSubmission(
        submission_id, report.type, report.period, revision, supersedes_id, row["created_at"]
    )


def _insert_values(session: Session, submission_id: int, report: Report) -> None:
    """The report's values as rows of `submission_id`, in one executemany."""
    if isinstance(report, Type1Report):
        rows: list[dict[str, object]] = [
            {"submission_id": submission_id, "field": name, "value": value}
            for name, value in report.values.items()
        ]
        statement = _INSERT_TYPE1
    else:
        rows = [
            {"submission_id": submission_id, "class_slug": cls, "type_slug": typ, "count": n}
            for (cls, typ), n in report.counts.items()
        ]
        statement = _INSERT_TYPE2
    if rows:
        session.execute(statement, rows)


def _check_storable(value: Decimal) -> None:
    # The column would round (PostgreSQL) or go through a float (SQLite); refuse
    # instead, so that what the receipt shows is exactly what was stored.
    if not value.is_finite() or abs(value) >= _TYPE1_LIMIT or value != value.quantize(_CENT):
        raise ValueError(f"type 1 value {value} does not fit NUMERIC(14, 2)")


def latest_submission(session: Session, team_id: int, type: str, period: str) -> Submission | None:
    """The newest revision of (team, type, period), the one that counts."""
    params = {"team_id": team_id, "type": type, "period": period}
    return session.exec(_LATEST, params=params).first()


def stored_values(report: Report) -> Values:
    """What `submission_values` reads back for `report` once `store_report` stored it,
    without reading it back: the same numbers (`store_report` refuses a value its column
    would change) in the same order."""
    if isinstance(report, Type1Report):
        return _type1_values(report.values.items())
    return _type2_values((cls, typ, n) for (cls, typ), n in report.counts.items())


def submission_values(session: Session, submission: Submission | StoredSubmission) -> Values:
    """type1: field -> value in form order; type2: "class" or "class/type" -> count."""
    params = {"submission_id": submission.id}
    if submission.type == "type1":
        return _type1_values((f, v) for f, v in session.execute(_STORED_TYPE1, params))
    return _type2_values((c, t, n) for c, t, n in session.execute(_STORED_TYPE2, params))


def _type1_values(rows: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    found = {field: _exact(value) for field, value in rows}
    return dict(
        sorted(found.items(), key=lambda item: _FIELD_ORDER.get(item[0], len(_FIELD_ORDER)))
    )


def _exact(value: Decimal) -> Decimal:
    # NUMERIC(14, 2) hands back 1204.00 for 1204 and 940.50 for 940.5; give back the
    # numbers as they were written (equal, and printed the same way in receipts).
    if value == value.to_integral_value():
        return Decimal(int(value))
    return value.normalize()


def _type2_values(rows: Iterable[tuple[str, str | None, int]]) -> dict[str, int]:
    """ "class" or "class/type" -> count, from (class slug, type slug, count) rows."""
    return {cls if typ is None else f"{cls}/{typ}": count for cls, typ, count in rows}


def submissions_for_message(session: Session, message_id: int) -> list[Submission]:
    """What one message stored, in the order it was stored."""
    query = (
        select(Submission).where(Submission.message_id == message_id).order_by(col(Submission.id))
    )
    return list(session.exec(query))


def list_submissions(
    session: Session,
    *,
    team: str | None = None,
    period: str | None = None,
    type: str | None = None,
) -> list[SubmissionRow]:
    """Submissions in id order, filtered by team handle, period and type.

    The submissions in one query, then their values by submission id, a page of ids a
    query (type 1 values of type 1 submissions, type 2 counts of type 2 ones): at most
    three queries for a listing of up to `_PAGE` submissions. The values are looked up
    by id, not joined to the filters: joined, PostgreSQL's planner hashed the whole value
    tables (years of every team's values) for one month's listing.
    """
    query = (
        select(Submission, Team.handle)
        .join(Team, col(Submission.team_id) == col(Team.id))
        .where(*_filters(team, period, type))
        .order_by(col(Submission.id))
    )
    found = list(session.exec(query))
    type1 = [sub.id for sub, _ in found if sub.id is not None and sub.type == "type1"]
    type2 = [sub.id for sub, _ in found if sub.id is not None and sub.type != "type1"]
    values = _values_of(session, type1, type2)
    return [_row(sub, handle, values.get(sub.id, {})) for sub, handle in found]


def _filters(team: str | None, period: str | None, type: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if team is not None:
        where.append(col(Team.handle) == team)
    if period is not None:
        where.append(col(Submission.period) == period)
    if type is not None:
        where.append(col(Submission.type) == type)
    return where


_PAGE = 500  # submission ids a value query asks for (bound parameters stay few)
_VALUES_OF = core_select(_TYPE1.c.submission_id, _TYPE1.c.field, _TYPE1.c.value)
_COUNTS_OF = core_select(
    _TYPE2.c.submission_id, _TYPE2.c.class_slug, _TYPE2.c.type_slug, _TYPE2.c.count
).order_by(_TYPE2.c.id)


def _values_of(session: Session, type1: list[int], type2: list[int]) -> dict[int | None, Values]:
    """The values of the type 1 submissions `type1` and the type 2 ones `type2`, read
    as plain rows (no ORM object per value), each table asked only for its own ids."""
    rows1: defaultdict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    rows2: defaultdict[int, list[tuple[str, str | None, int]]] = defaultdict(list)
    for page in _pages(type1):
        for sub, name, value in session.execute(_VALUES_OF.where(_TYPE1.c.submission_id.in_(page))):
            rows1[sub].append((name, value))
    for page in _pages(type2):
        for sub, cls, typ, n in session.execute(_COUNTS_OF.where(_TYPE2.c.submission_id.in_(page))):
            rows2[sub].append((cls, typ, n))
    values: dict[int | None, Values] = {key: _type1_values(rows) for key, rows in rows1.items()}
    values.update((key, _type2_values(rows)) for key, rows in rows2.items())
    return values


def _pages(ids: list[int]) -> list[list[int]]:
    return [ids[start : start + _PAGE] for start in range(0, len(ids), _PAGE)]


def _row(submission: Submission, handle: str, values: Values) -> SubmissionRow:
    if submission.id is None:
        raise RuntimeError("stored submission without id")
    return SubmissionRow(
        id=submission.id,
        team=handle,
        type=submission.type,
        period=submission.period,
        revision=submission.revision,
        message_id=submission.message_id,
        supersedes_id=submission.supersedes_id,
        created_at=submission.created_at,
        values=values,
    )
