"""Revision 0004: type 2 counts stored before it are carried over as sent in
eCSIRT.net v2, exactly as stored, so no published figure changes; then they can be
counted in RSIT 1.3 from what was sent. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from databases import insert_reflected
from sqlalchemy import Engine, MetaData, Table, inspect, select
from sqlmodel import SQLModel

from parsers.model import Classification
from parsers.taxonomy import ECSIRT, RSIT, load_taxonomy
from reports.statistics import compute
from store import migrate
from store.db import open_session
from store.models import Submission
from store.statistics import newest_reports
from store.submission_rows import list_submissions, submission_values
from store.type2 import StoredCount

REVISION = "0004"
WHEN = datetime(2026, 10, 3, 12, 30, tzinfo=UTC)
# Three teams' October type 2 reports as the schema before REVISION stored them.
OLD_COUNTS = {
    "cert-a": [("malicious-code", "virus", 9), ("fraud", "masquerade", 4), ("other", None, 2)],
    "cert-b": [("malicious-code", None, 6), ("intrusions", "application-compromise", 1)],
    "cert-c": [("other", None, 3), ("malicious-code", "virus", 3)],
}


def before() -> str:
    found = migrate.scripts().get_revision(REVISION)
    assert found is not None and isinstance(found.down_revision, str)
    return found.down_revision


def old_type2_rows(engine: Engine) -> dict[str, int]:
    """Teams, messages, submissions and counts written through the tables as the old
    schema has them (reflected, not the current models); submission id per team."""
    submissions: dict[str, int] = {}
    with engine.begin() as connection:
        insert = functools.partial(insert_reflected, connection, MetaData())

        for handle, counts in OLD_COUNTS.items():
            team = insert("team", handle=handle, name=handle.upper(), email=f"c@{handle}.example",
                          status="accredited", created_at=WHEN)  # fmt: skip
            message = insert("message", channel="smtp", received_at=WHEN, raw=b"raw",
                             raw_sha256=handle * 8, size=3, state="accepted", team_id=team,
                             attempts=1)  # fmt: skip
            sub = submissions[handle] = insert(
                "submission", team_id=team, type="type2", period="2026-10", revision=1,
                message_id=message, source="body", created_at=WHEN)  # fmt: skip
            for class_slug, type_slug, count in counts:
                insert("type2count", submission_id=sub, class_slug=class_slug,
                       type_slug=type_slug, count=count)  # fmt: skip
    return submissions


def test_existing_counts_are_carried_over_as_sent_in_ecsirt(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, before())
    ids = old_type2_rows(empty_engine)
    migrate.upgrade(empty_engine)
    assert migrate.current(empty_engine) == migrate.head()
    assert differences(empty_engine) == []
    with open_session(empty_engine) as s:
        listed = {row.team: row for row in list_submissions(s, type="type2")}
        for handle, counts in OLD_COUNTS.items():
            assert listed[handle].counts == tuple(
                StoredCount(Classification(ECSIRT, c, t), Classification(ECSIRT, c, t), n)
                for c, t, n in counts
            )
            submission = s.get(Submission, ids[handle])
            assert submission is not None
            expected = {(c if t is None else f"{c}/{t}"): n for c, t, n in counts}
            assert submission_values(s, submission) == expected
            assert listed[handle].values == expected


def test_no_figure_changes_and_rsit_counts_from_what_was_sent(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, before())
    old_type2_rows(empty_engine)
    migrate.upgrade(empty_engine)
    with open_session(empty_engine) as s:
        found = newest_reports(s, "2025-11", "2026-10")
    taxonomy = load_taxonomy()
    stats = compute(found, "2026-10", taxonomy, minimum=3, secret=b"k" * 32)
    assert stats.taxonomy == ECSIRT
    # By hand from OLD_COUNTS, three teams each: what the old schema's figures were.
    assert stats.type2.current("malicious-code").total == Decimal(9 + 6 + 3)
    assert stats.type2.current("malicious-code/virus").total == Decimal(12)
    assert stats.type2.current("malicious-code/-").total == Decimal(6)
    assert stats.type2.current("fraud/masquerade").total == Decimal(4)
    assert stats.type2.current("other").total == Decimal(5)
    assert stats.type2.current("total").total == Decimal(28)
    assert stats.type2.current("total").teams == 3
    in_rsit = compute(found, "2026-10", taxonomy.with_canonical(RSIT), minimum=3, secret=b"k" * 32)
    assert in_rsit.taxonomy == RSIT
    assert in_rsit.type2.current("malicious-code").total == Decimal(18)
    assert in_rsit.type2.current("malicious-code/-").total == Decimal(18)  # virus: no type
    assert in_rsit.type2.current("fraud/masquerade").total == Decimal(4)
    assert in_rsit.type2.current("intrusions/application-compromise").total == Decimal(1)
    assert in_rsit.type2.current("other/-").total == Decimal(5)
    assert in_rsit.type2.current("total").total == Decimal(28)


def test_the_revision_can_be_undone_keeping_what_counts(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, before())
    ids = old_type2_rows(empty_engine)
    migrate.upgrade(empty_engine, REVISION)
    migrate_down(empty_engine, before())
    columns = {c["name"] for c in inspect(empty_engine).get_columns("type2count")}
    assert columns == {"id", "submission_id", "class_slug", "type_slug", "count"}
    with empty_engine.connect() as connection:
        table = Table("type2count", MetaData(), autoload_with=connection)
        query = select(table.c.class_slug, table.c.type_slug, table.c.count).where(
            table.c.submission_id == ids["cert-a"]
        )
        rows = connection.execute(query.order_by(table.c.id)).all()
    assert [tuple(row) for row in rows] == OLD_COUNTS["cert-a"]


def migrate_down(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), revision)


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would write to make the database match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))
