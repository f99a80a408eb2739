"""Fixtures for the store tests: a fresh database per test, on SQLite and PostgreSQL.

`engine` (and `empty_engine`, without tables) runs each test twice: on a new SQLite
file under tmp_path, and on the local PostgreSQL inside a schema of its own
(tests/databases.py). The PostgreSQL run is
skipped, saying why, when no server answers at the test URL and none is required (in
CI and in the PostgreSQL pass it fails instead); the PostgreSQL pass runs only it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from databases import BACKENDS, backend, postgres_schema
from sqlalchemy import Engine

from parsers.model import TYPE1_FIELDS, Type1Report, Type2Report
from store import registry, spool
from store.db import make_engine, transaction
from store.migrate import upgrade


def _backends() -> list[str]:
    # The SQLite pass covers both (PostgreSQL skipped, saying why, where there is none
    # and none is required); the PostgreSQL pass need not repeat the SQLite runs.
    return ["postgresql"] if backend() == "postgresql" else list(BACKENDS)


@pytest.fixture(params=_backends())
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database without any table, on each backend."""
    if request.param == "sqlite":
        (tmp_path / "db").mkdir()
        yield from _engine(f"sqlite:///{tmp_path / 'db' / 'clearinghouse.db'}")
    else:
        with postgres_schema("test_store") as url:
            yield from _engine(url)


def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """A database with the current schema, on each backend."""
    upgrade(empty_engine)
    return empty_engine


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
