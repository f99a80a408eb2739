"""Which database the tests run on, and a fresh empty one per test.

The suite runs twice (`make test`): on SQLite, and with CLEARINGHOUSE_TEST_DATABASE=postgresql
on the PostgreSQL at CLEARINGHOUSE_TEST_POSTGRES_URL (default: the local server's `test`
database). Each PostgreSQL test gets a schema of its own, made current through the
connection's `search_path` and dropped afterwards, so tests never see each other's rows
and a subprocess given the URL lands in the same schema.

PostgreSQL that was asked for (or that CI needs) but does not answer fails the test:
a pass that silently skipped every test would prove nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

BACKENDS = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get(
    "CLEARINGHOUSE_TEST_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
)


def backend() -> str:
    """The backend of this pass: CLEARINGHOUSE_TEST_DATABASE, sqlite when unset."""
    chosen = os.environ.get("CLEARINGHOUSE_TEST_DATABASE", "") or "sqlite"
    if chosen not in BACKENDS:
        raise pytest.UsageError(
            f"CLEARINGHOUSE_TEST_DATABASE={chosen!r}: expected one of {', '.join(BACKENDS)}"
        )
    return chosen


def postgres_required() -> bool:
    """PostgreSQL must answer: this is the PostgreSQL pass, or CI (which runs both)."""
    return backend() == "postgresql" or bool(os.environ.get("CI"))


@cache
def _admin() -> Engine | str:
    """An autocommit engine on the test database, or why there is none."""
    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_size=1)
        with admin.connect():
            pass
    except (ImportError, OperationalError) as exc:
        return f"PostgreSQL not available at {POSTGRES_URL}: {exc}"
    return admin


def postgres_admin() -> Engine:
    """The admin engine; fails the test if PostgreSQL is required, skips it otherwise."""
    admin = _admin()
    if isinstance(admin, str):
        if postgres_required():
            pytest.fail(f"{admin} (see .ci/run for setting one up)", pytrace=False)
        pytest.skip(admin)
    return admin


@contextmanager
def postgres_schema(prefix: str = "test") -> Iterator[str]:
    """The URL of a new empty schema; its connections are ended and it is dropped after."""
    admin = postgres_admin()
    schema = f"{prefix}_{uuid.uuid4().hex}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # application_name tags every connection to this schema, wherever it was opened
    # (a subprocess, a leaked engine), so that none can keep the DROP waiting.
    url = make_url(POSTGRES_URL).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :schema AND pid <> pg_backend_pid()"
                ),
                {"schema": schema},
            )
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@contextmanager
def fresh_database(directory: Path, prefix: str = "test") -> Iterator[str]:
    """The URL of a new empty database on this pass's backend (SQLite: in `directory`,
    made here if missing, as `clearinghouse init` makes it)."""
    if backend() == "postgresql":
        with postgres_schema(prefix) as url:
            yield url
    else:
        directory.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{directory / 'clearinghouse.db'}"


def insert_reflected(
    connection: Connection, old: MetaData, table_name: str, /, **values: Any
) -> int:
    """Insert a row into `table_name` as the database has it now (reflected into `old`,
    not the current models: for data an earlier schema held); returns its id."""
    table = Table(table_name, old, autoload_with=connection)
    key = connection.execute(table.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])
