"""Schema migrations: old databases keep their data, the revisions match the models.

Run on SQLite and PostgreSQL (the `empty_engine` fixture). The comparison with
`SQLModel.metadata` is what catches a model added or changed without a revision:
`python -m store.migrate revision "..."` writes one.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from databases import insert_reflected, postgres_schema
from sqlalchemy import Engine, MetaData, inspect, text
from sqlmodel import SQLModel, select

from store import migrate, spool
from store.db import make_engine, open_session, transaction
from store.models import Message, OutboxEntry, Submission, Team
from store.submission_rows import submission_values

WHEN = datetime(2026, 10, 3, 12, 30, tzinfo=UTC)


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    return [script.revision for script in reversed(list(migrate.scripts().walk_revisions()))]


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would write to make the database match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def old_rows(engine: Engine) -> dict[str, int]:
    """A team, an accepted message with its submission and receipt, written through the
    tables as the old schema has them (reflected, not the current models); their ids."""
    with engine.begin() as connection:
        insert = functools.partial(insert_reflected, connection, MetaData())

        team = insert("team", handle="cert-x", name="CERT-X", email="cert@x.example",
                      status="accredited", country="NL", created_at=WHEN)  # fmt: skip
        message = insert("message", channel="smtp", received_at=WHEN, raw=b"raw mail",
                         raw_sha256="ab" * 32, size=8, state="accepted", team_id=team,
                         attempts=1)  # fmt: skip
        submission = insert("submission", team_id=team, type="type1", period="2026-09",
                            revision=1, message_id=message, source="body",
                            created_at=WHEN)  # fmt: skip
        insert("type1value", submission_id=submission, field="requests", value=Decimal("1204"))
        entry = insert("outboxentry", kind="receipt", message_id=message,
                       recipient="cert@x.example", raw=b"sealed", dedupe_key="receipt:1",
                       state="sent", attempts=1, next_attempt_at=WHEN,
                       created_at=WHEN)  # fmt: skip
    return {"team": team, "message": message, "submission": submission, "entry": entry}


def assert_old_rows_intact(engine: Engine, ids: dict[str, int]) -> None:
    with open_session(engine) as s:
        team = s.get(Team, ids["team"])
        assert team is not None and (team.handle, team.created_at) == ("cert-x", WHEN)
        message = s.get(Message, ids["message"])
        assert message is not None
        assert (message.raw, message.state, message.team_id) == (b"raw mail", "accepted", team.id)
        submission = s.get(Submission, ids["submission"])
        assert submission is not None and submission.message_id == message.id
        assert submission_values(s, submission) == {"requests": Decimal("1204")}
        entry = s.get(OutboxEntry, ids["entry"])
        assert entry is not None and (entry.dedupe_key, entry.state) == ("receipt:1", "sent")


def test_the_revisions_have_exactly_one_head() -> None:
    assert len(migrate.scripts().get_heads()) == 1
    assert revisions()[-1] == migrate.head()


def test_replaying_every_revision_gives_exactly_the_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, revisions()[0])  # from nothing, through the revisions
    migrate.upgrade(empty_engine)
    assert migrate.current(empty_engine) == migrate.head()
    assert differences(empty_engine) == []


def test_a_new_database_is_the_models_stamped_at_the_head(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert migrate.current(empty_engine) == migrate.head()
    assert differences(empty_engine) == []


def test_the_baseline_schema_with_data_is_upgraded_with_the_data_intact(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, revisions()[0])
    ids = old_rows(empty_engine)
    migrate.upgrade(empty_engine)
    assert migrate.current(empty_engine) == migrate.head()
    assert_old_rows_intact(empty_engine, ids)
    assert differences(empty_engine) == []
    # ... and the upgraded store goes on working: new rows get fresh ids.
    new_id, created = spool.spool_message(empty_engine, b"new mail", "smtp")
    assert created and new_id > ids["message"]


@pytest.mark.parametrize("lacking", [(), ("monthlyrun",)], ids=["complete", "before-monthly"])
def test_a_database_from_before_migrations_is_adopted_with_its_data(
    empty_engine: Engine, lacking: tuple[str, ...]
) -> None:
    # What `create_all` made before there were migrations: tables, no version table.
    migrate.upgrade(empty_engine, revisions()[0])
    with empty_engine.begin() as connection:
        for table in (migrate.VERSION_TABLE, *lacking):
            connection.execute(text(f"DROP TABLE {table}"))
    ids = old_rows(empty_engine)

    migrate.upgrade(empty_engine)

    assert migrate.current(empty_engine) == migrate.head()
    assert_old_rows_intact(empty_engine, ids)
    assert differences(empty_engine) == []


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    with transaction(engine) as s:
        s.add(Team(handle="kept", name="Kept", email="k@kept.example"))
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    with open_session(engine) as s:
        assert [t.handle for t in s.exec(select(Team))] == ["kept"]


def test_every_revision_can_be_undone(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, revisions()[0])
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "base")
    assert tables(empty_engine) == {migrate.VERSION_TABLE}
    assert migrate.current(empty_engine) is None


def test_other_applications_tables_do_not_make_a_database_old(empty_engine: Engine) -> None:
    with empty_engine.begin() as connection:
        connection.execute(text("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)"))
    migrate.upgrade(empty_engine)
    assert migrate.current(empty_engine) == migrate.head()
    assert tables(empty_engine) >= set(SQLModel.metadata.tables) | {"someone_elses"}


@pytest.fixture
def shared_postgres() -> Iterator[str]:
    with postgres_schema("test_migrate") as url:
        yield url


def test_instances_starting_together_on_postgresql_migrate_once(shared_postgres: str) -> None:
    engines = [make_engine(shared_postgres) for _ in range(4)]
    start = threading.Barrier(len(engines))
    failures: list[Exception] = []

    def start_instance(engine: Engine) -> None:
        start.wait()
        try:
            migrate.upgrade(engine)
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=start_instance, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert failures == []
        assert migrate.current(engines[0]) == migrate.head()
        assert differences(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()
