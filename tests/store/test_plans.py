"""Queries whose cost must not grow with years of data: the plans the database chooses.

A listing that reads one page of rows is fast on a test database whatever its plan; on
ten years of data a full scan or a sort of every row of a state is not. These tests run
the store's own queries over a store with some history, catch the SQL they send, and
read the database's plan for it (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL,
after ANALYZE as autovacuum would run it; SQLite gets no ANALYZE, like the gateway's).
bench/years.py measures the same queries on ten years of a 1,000-team clearinghouse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text
from sqlmodel import select

from contract.codes import State
from store import leases, spool
from store.db import open_session
from store.models import Message, OutboxEntry, Submission, Team, table_of
from store.monitoring import list_outbox
from store.submission_rows import list_submissions

WHEN = datetime(2024, 1, 1, tzinfo=UTC)
TEAMS = 20
MONTHS = 24


@pytest.fixture
def history(engine: Engine) -> Engine:
    """Teams with two years of reports (two messages a team a month, one in 50 of them
    quarantined, a receipt sent for each), statistics gathered on PostgreSQL."""
    teams = [{"id": i, "handle": f"team{i:02d}", "name": f"T{i}", "email": f"c@t{i}.example",
              "status": "accredited", "created_at": WHEN} for i in range(1, TEAMS + 1)]  # fmt: skip
    messages: list[dict[str, Any]] = []
    submissions: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for month in range(MONTHS):
        period = f"{2024 + month // 12}-{month % 12 + 1:02d}"
        for team in range(1, TEAMS + 1):
            for report_type in ("type1", "type2"):
                mid = len(messages) + 1
                state = "quarantined" if mid % 50 == 0 else "accepted"
                at = WHEN + timedelta(days=31 * month, minutes=mid)
                messages.append({"id": mid, "channel": "smtp", "received_at": at, "raw": b"x" * 64,
                                 "raw_sha256": f"{mid:064x}", "size": 64, "state": state,
                                 "team_id": team, "attempts": 1})  # fmt: skip
                if state == "accepted":
                    submissions.append({"team_id": team, "type": report_type, "period": period,
                                        "revision": 1, "message_id": mid, "source": "body",
                                        "created_at": at})  # fmt: skip
                    entries.append({"kind": "receipt", "message_id": mid, "recipient": "c@x",
                                    "raw": b"sealed" * 100, "dedupe_key": f"receipt:{mid}",
                                    "state": "sent", "attempts": 1, "next_attempt_at": at,
                                    "created_at": at})  # fmt: skip
    with engine.begin() as connection:
        for model, rows in ((Team, teams), (Message, messages), (Submission, submissions),
                            (OutboxEntry, entries)):  # fmt: skip
            connection.execute(insert(table_of(model)), rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for table in ("team", "message"):  # ids given above: the sequences catch up
                latest = (
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"  # noqa: S608, E501
                )
                connection.execute(text(latest))
            for table in ("team", "message", "submission", "outboxentry"):
                connection.execute(text(f"ANALYZE {table}"))
    return engine


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    """The SQL (and parameters) every engine sends inside the block."""
    seen: list[tuple[str, Any]] = []

    def note(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((sql, params))

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def plan(engine: Engine, sql: str, params: Any) -> str:
    """The database's plan for one statement, one line a step."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(row[3] for row in cursor.fetchall())
    finally:
        raw.rollback()
        raw.close()


def plan_of(engine: Engine, run: Callable[[], object], table: str) -> str:
    """The plan of the first statement `run` sends that reads `table`."""
    with statements() as seen:
        run()
    sql, params = next((s, p) for s, p in seen if f"FROM {table}" in s)
    return plan(engine, sql, params)


def test_a_page_of_one_state_is_read_without_scanning_every_message(history: Engine) -> None:
    with open_session(history) as s:
        found = plan_of(
            history, lambda: spool.list_messages(s, state=State.QUARANTINED, limit=5), "message"
        )
        listed = spool.list_messages(s, state=State.QUARANTINED, limit=5)
    assert [m.id for m in listed] == [50, 100, 150, 200, 250]
    assert "SCAN message" not in found and "Seq Scan on message" not in found
    if history.dialect.name == "sqlite":  # the state index holds each state in id order
        assert "ix_message_state" in found and "TEMP B-TREE" not in found


def test_the_duplicate_check_looks_up_the_content_hash(history: Engine) -> None:
    """Not the state index in id order, which SQLite chose on the hash's own index while
    the store was small (and an index on (state, id) made it choose at any size): every
    accepted message of every year read for each message processed."""
    with open_session(history) as s:
        found = plan_of(history, lambda: spool.find_accepted_content(s, 3, "ab" * 32), "message")
    assert "ix_message_content_sha256_team_id" in found


def test_the_claim_finds_the_oldest_received_message_through_the_index(
    history: Engine,
) -> None:
    spool.spool_message(history, b"new", "smtp")
    found = plan_of(history, lambda: leases.claim_next(history, "w", 60, 1000), "message")
    assert "ix_message_state" in found
    assert "SCAN message" not in found and "Seq Scan on message" not in found


def test_one_teams_period_is_read_through_an_index_with_the_period(history: Engine) -> None:
    with open_session(history) as s:
        found = plan_of(
            history, lambda: list_submissions(s, team="team07", period="2025-03"), "submission"
        )
        rows = list_submissions(s, team="team07", period="2025-03")
    assert {(r.team, r.period) for r in rows} == {("team07", "2025-03")}
    # An index with the period in it: the month's rows, not all the team's years (with
    # the (team_id) index alone SQLite read every report of the team). PostgreSQL may
    # go by the period alone: a month's reports of all teams, as few whatever the years.
    assert "ix_submission_team_id_period" in found or "ix_submission_period" in found
    assert "SCAN submission" not in found and "Seq Scan on submission" not in found


def test_one_state_is_counted_within_its_part_of_the_index(history: Engine) -> None:
    with open_session(history) as s:
        found = plan_of(history, lambda: spool.count_in_state(s, "quarantined"), "message")
        assert spool.count_in_state(s, "quarantined") == TEAMS * MONTHS * 2 // 50
        assert spool.count_in_state(s, "received") == 0
    assert "ix_message_state" in found
    assert "SCAN message" not in found and "Seq Scan on message" not in found


def test_an_outbox_listing_can_leave_the_mail_in_the_database(history: Engine) -> None:
    with open_session(history) as s:
        with statements() as seen:
            entries = list_outbox(s, with_raw=False)
        assert len(entries) == len(s.exec(select(OutboxEntry.id)).all())
        assert all("raw" not in sql.split("FROM")[0] for sql, _ in seen)
        assert entries[0].raw == b"sealed" * 100  # still there when asked for
