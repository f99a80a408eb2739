"""Fixtures for the store tests: a fresh database per test, on SQLite and PostgreSQL.

`engine` runs each test twice: on a new SQLite file under tmp_path, and on the local
PostgreSQL inside a schema of its own (via `search_path`), dropped afterwards. The
PostgreSQL run is skipped, saying why, when no server answers at the test URL
(CLEARINGHOUSE_TEST_POSTGRES_URL overrides the default).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from parsers.model import TYPE1_FIELDS, Type1Report, Type2Report
from store import registry, spool
from store.db import create_schema, make_engine, transaction

POSTGRES_URL = os.environ.get(
    "CLEARINGHOUSE_TEST_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
)


def _sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'clearinghouse.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def _postgres_admin() -> Engine:
    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect():
            pass
    except (ImportError, OperationalError) as exc:
        pytest.skip(f"PostgreSQL not available at {POSTGRES_URL}: {exc}")
    return admin


def _postgres_engine() -> Iterator[Engine]:
    admin = _postgres_admin()
    schema = f"test_store_{uuid.uuid4().hex}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield from _sqlite_engine(tmp_path)
    else:
        yield from _postgres_engine()


@pytest.fixture
def new_team_id(engine: Engine) -> Callable[[str], int]:
    """Creates (and commits) a team; returns its id."""

    def make(handle: str) -> int:
        with transaction(engine) as session:
            team = registry.add_team(
                session,
                handle=handle,
                name=f"Team {handle}",
                email=f"stats@{handle}.example",
                status="accredited",
                country="NL",
            )
            assert team.id is not None
            return team.id

    return make


@pytest.fixture
def new_message_id(engine: Engine) -> Callable[..., int]:
    """Spools (and commits) a message; returns its id."""

    def make(raw: bytes = b"Subject: x\r\n\r\nbody\r\n") -> int:
        message_id, created = spool.spool_message(engine, raw, "smtp")
        assert created
        return message_id

    return make


def type1_report(period: str = "2026-10", **overrides: Decimal) -> Type1Report:
    values = {name: Decimal(index * 100 + 4) for index, name in enumerate(TYPE1_FIELDS)}
    values["hours-spent"] = Decimal("940.5")
    values.update({key.replace("_", "-"): value for key, value in overrides.items()})
    return Type1Report(period=period, values=values)


def type2_report(period: str = "2026-10") -> Type2Report:
    return Type2Report(
        period=period,
        counts={
            ("abusive-content", "spam"): 120,
            ("intrusion-attempts", "login-attempts"): 43,
            ("intrusions", None): 3,
            ("other", None): 1,
        },
    )


@pytest.fixture
def reports() -> tuple[Callable[..., Type1Report], Callable[..., Type2Report]]:
    """The report builders, as fixtures: test modules cannot import conftest."""
    return type1_report, type2_report
