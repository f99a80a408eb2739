"""Stored reports read back: the rows `submissions list` and the status command show.

In: a session and filters (team, period, type), and the taxonomy whose canonical
vocabulary type 2 values are shown in. Out: flat `SubmissionRow`s, every revision,
with their values read back exactly. Storing them is `store/submissions.py`'s job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from parsers.model import TYPE1_FIELDS, Report, Type1Report
from parsers.taxonomy import Taxonomy
from store.models import (
    Submission,
    Team,
    Type1Value,
    Type2Count,
    table_of,
)
from store.submissions import StoredSubmission, Values
from store.type2 import COLUMNS as TYPE2_COLUMNS
from store.type2 import StoredCount, stored_counts, totals

_TYPE1, _TYPE2 = table_of(Type1Value), table_of(Type2Count)
_FIELD_ORDER = {name: index for index, name in enumerate(TYPE1_FIELDS)}

_STORED_TYPE1 = core_select(_TYPE1.c.field, _TYPE1.c.value).where(
    _TYPE1.c.submission_id == bindparam("submission_id")
)

_STORED_TYPE2 = (
    core_select(*TYPE2_COLUMNS)
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
    values: Values  # type 2: "class" or "class/type" -> count, as `submission_values`
    counts: tuple[StoredCount, ...] = ()  # type 2: each count as sent and as counted


def submission_values(
    session: Session,
    submission: Submission | StoredSubmission,
    taxonomy: Taxonomy | None = None,
) -> Values:
    """type1: field -> value in form order; type2: "class" or "class/type" -> count, in
    `taxonomy`'s canonical vocabulary when given, else as counted when stored."""
    params = {"submission_id": submission.id}
    if submission.type == "type1":
        return _type1_values((f, v) for f, v in session.execute(_STORED_TYPE1, params))
    rows = session.execute(_STORED_TYPE2, params)
    return totals((StoredCount.of_row(row) for row in rows), taxonomy)


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
    taxonomy: Taxonomy | None = None,
) -> list[SubmissionRow]:
    """Submissions in id order, filtered by team handle, period and type; type 2 counts
    in `taxonomy`'s canonical vocabulary when given, else as counted when stored.

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
    values, counts = _values_of(session, type1, type2, taxonomy)
    return [
        _row(sub, handle, values.get(sub.id, {}), counts.get(sub.id, ())) for sub, handle in found
    ]


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
_COUNTS_OF = core_select(_TYPE2.c.submission_id, *TYPE2_COLUMNS).order_by(_TYPE2.c.id)


def _values_of(
    session: Session, type1: list[int], type2: list[int], taxonomy: Taxonomy | None
) -> tuple[dict[int | None, Values], dict[int | None, tuple[StoredCount, ...]]]:
    """The values of the type 1 submissions `type1` and the counts of the type 2 ones
    `type2`, read as plain rows, each table asked only for its own ids."""
    rows1: defaultdict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    for page in _pages(type1):
        query = _VALUES_OF.where(_TYPE1.c.submission_id.in_(page))
        for submission_id, name, value in session.execute(query):
            rows1[submission_id].append((name, value))
    rows2: defaultdict[int, list[StoredCount]] = defaultdict(list)
    for page in _pages(type2):
        for submission_id, *count in session.execute(
            _COUNTS_OF.where(_TYPE2.c.submission_id.in_(page))
        ):
            stored = StoredCount.of_row(count)
            rows2[submission_id].append(stored if taxonomy is None else stored.recounted(taxonomy))
    values: dict[int | None, Values] = {key: _type1_values(rows) for key, rows in rows1.items()}
    values.update((key, totals(rows)) for key, rows in rows2.items())
    return values, {key: tuple(rows) for key, rows in rows2.items()}


def _pages(ids: list[int]) -> list[list[int]]:
    return [ids[start : start + _PAGE] for start in range(0, len(ids), _PAGE)]


def _row(
    submission: Submission, handle: str, values: Values, counts: tuple[StoredCount, ...]
) -> SubmissionRow:
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
        counts=counts,
    )


def stored_values(report: Report) -> Values:
    """What `submission_values` reads back for `report` once `store_report` stored it,
    without reading it back: the same numbers (`store_report` refuses a value its column
    would change) in the same order."""
    if isinstance(report, Type1Report):
        return _type1_values(report.values.items())
    return totals(stored_counts(report))
