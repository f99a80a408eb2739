"""Rows into a store in bulk, as fast as each database takes them.

In: a connection (inside the caller's transaction), a table name and its rows as dicts
with every column, ids included. Out: the rows inserted (SQLite: one executemany;
PostgreSQL: COPY on psycopg's own connection, several times faster than INSERTs); after
the load, `after_bulk_load` moves PostgreSQL's id sequences past the ids given and
gathers its statistics. Used by bench/history.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, insert, text

from store.models import (
    Message,
    MonthlyRun,
    OutboxEntry,
    Submission,
    Team,
    TeamKey,
    Type1Value,
    Type2Count,
    table_of,
)


def insert_rows(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _copy(connection, table, rows)
    else:
        connection.execute(insert(_TABLES[table]), rows)


_TABLES = {
    table_of(model).name: table_of(model)
    for model in (
        Team,
        TeamKey,
        Message,
        Submission,
        Type1Value,
        Type2Count,
        OutboxEntry,
        MonthlyRun,
    )
}


def _copy(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """COPY on psycopg's own connection: several times faster than INSERTs."""
    columns = list(rows[0])
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
        for row in rows:
            copy.write_row([row[c] for c in columns])


def after_bulk_load(engine: Engine, next_ids: dict[str, int]) -> None:
    """PostgreSQL: sequences past the ids chosen here; statistics, as autovacuum
    would gather them soon after. SQLite: nothing (the gateway never runs ANALYZE)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table, value in next_ids.items():
            connection.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :v)"), {"v": value}
            )
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('team', 'id'), (SELECT max(id) FROM team))")
        )
    # Each table by name: a bare VACUUM would take every schema of the database.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in _TABLES:
            connection.execute(text(f"VACUUM ANALYZE {table}"))
