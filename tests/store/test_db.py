"""Engines and transactions: SQLite set-up, commit and rollback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from store import registry
from store.db import _WriteTurn, create_schema, make_engine, open_session, transaction


def test_sqlite_engine_makes_its_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "var" / "deep" / "clearinghouse.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        create_schema(engine)
        create_schema(engine)  # idempotent
        assert path.exists()
        with engine.connect() as connection:
            pragma = {
                name: connection.execute(text(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
        assert pragma == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 10000,
            "synchronous": 2,  # FULL
        }
    finally:
        engine.dispose()


def test_postgresql_engine_pings_its_pool() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert engine.pool._pre_ping
    engine.dispose()


def _add(session_team: str, engine: Engine) -> None:
    with transaction(engine) as session:
        registry.add_team(
            session,
            handle=session_team,
            name="n",
            email="e@x",
            status="accredited",
            country=None,
        )


def test_transaction_commits_or_rolls_back(engine: Engine) -> None:
    _add("kept", engine)
    with pytest.raises(RuntimeError), transaction(engine) as session:
        registry.add_team(
            session, handle="lost", name="n", email="e@x", status="listed", country=None
        )
        raise RuntimeError("boom")
    with open_session(engine) as session:
        assert [t.handle for t in registry.list_teams(session)] == ["kept"]


def test_objects_stay_readable_after_commit(engine: Engine) -> None:
    with transaction(engine) as session:
        team = registry.add_team(
            session, handle="t", name="n", email="e@x", status="listed", country=None
        )
    assert team.handle == "t" and team.id is not None


# --- SQLite's write turn ----------------------------------------------------------------------


def _waiting(turn: _WriteTurn, count: int) -> None:
    """Until `count` threads wait for the turn (a Condition keeps its waiters in a deque)."""
    deadline = time.monotonic() + 10
    while len(turn._changed._waiters) < count:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.001)


def test_an_urgent_writer_takes_the_next_turn_ahead_of_one_that_waited_longer() -> None:
    turn, order = _WriteTurn(), []

    def writer(name: str, urgent: bool) -> threading.Thread:
        def write() -> None:
            with turn(urgent):
                order.append(name)

        thread = threading.Thread(target=write)
        thread.start()
        return thread

    with turn(False):
        worker = writer("worker", False)
        _waiting(turn, 1)
        door = writer("door", True)
        _waiting(turn, 2)
    door.join(10)
    worker.join(10)
    assert order == ["door", "worker"]


def test_the_write_turn_is_reentrant_and_held_until_the_outermost_release() -> None:
    turn, order = _WriteTurn(), []
    with turn(False):
        with turn(True):  # a transaction inside a transaction of the same thread
            pass
        other = threading.Thread(target=lambda: order.append("other") if _enter(turn) else None)
        other.start()
        _waiting(turn, 1)
        order.append("outer")
    other.join(10)
    assert order == ["outer", "other"]


def _enter(turn: _WriteTurn) -> bool:
    with turn(False):
        return True
