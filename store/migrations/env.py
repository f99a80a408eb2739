"""Alembic's environment: migrate the connection `store.migrate` hands over.

Only online migrations on a connection the caller opened (and holds the lock on) are
supported: `store.migrate` puts it into `config.attributes["connection"]`. The target
is `SQLModel.metadata`, so autogenerate compares against the models in store/models.py.
Revisions are written with plain SQLAlchemy types, never sqlmodel's, so that an old
revision keeps meaning what it meant when the models change.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

import store.models  # noqa: F401  (registers the tables on SQLModel.metadata)


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render sqlmodel's column types as the plain SQLAlchemy types they stand for."""
    if kind != "type":
        return False
    if isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(item, AutoString):
        return "sa.String()" if item.length is None else f"sa.String(length={item.length})"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER is limited
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _connection() -> Connection:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise RuntimeError("run migrations through store.migrate, on an open connection")
    return connection


run_migrations(_connection())
