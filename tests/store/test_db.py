"""Engines and transactions: SQLite set-up, commit and rollback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from databases import postgres_admin, postgres_schema
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from waiting import wait_until

import store.db
from store import registry
from store.db import (
    make_engine,
    one_statement,
    one_statement_connection,
    open_session,
    read_connection,
    transaction,
)
from store.migrate import upgrade
from store.write_turns import _WriteTurn, commits_so_far

ROOT = Path(__file__).resolve().parents[2]
IDLE = psycopg.pq.TransactionStatus.IDLE


def test_sqlite_engine_makes_no_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "var" / "deep" / "clearinghouse.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(OperationalError, match="unable to open database file"):
            upgrade(engine)  # only `init` makes the data directory (App.initialise)
        assert not (tmp_path / "var").exists()
        path.parent.mkdir(parents=True)
        upgrade(engine)
        upgrade(engine)  # idempotent
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


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _drop_on_the_server(pid: int) -> None:
    """What a server restart or an idle timeout does to a pooled connection."""
    with postgres_admin().connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@contextmanager
def _pool_with_a_dropped_connection() -> Iterator[tuple[Engine, int]]:
    """A PostgreSQL engine whose one pooled connection the server has just ended."""
    with postgres_schema("test_ping") as url:
        engine = make_engine(url)
        try:
            dropped = _backend_pid(engine)  # now idle in the pool
            _drop_on_the_server(dropped)
            yield engine, dropped
        finally:
            engine.dispose()


def test_an_idle_postgresql_connection_the_server_dropped_is_replaced_at_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store.db, "PING_AFTER_IDLE_SECONDS", 0.0)  # idle long enough
    with _pool_with_a_dropped_connection() as (engine, dropped):
        assert _backend_pid(engine) != dropped  # pinged, found dead, replaced: no error


def test_a_busy_postgresql_connection_is_not_pinged_and_fails_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without a ping per checkout, a connection dropped between two quick transactions
    # fails the next one; the pool then replaces it, and the caller's retry succeeds.
    monkeypatch.setattr(store.db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with _pool_with_a_dropped_connection() as (engine, dropped):
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != dropped


def _in_transaction(session: Session) -> bool:
    """Whether the server holds a transaction open for the session's connection now."""
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    return bool(dbapi.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


@contextmanager
def _postgres_with_team(schema: str, handle: str) -> Iterator[Engine]:
    """An engine on a fresh PostgreSQL schema holding one team, `handle`."""
    with postgres_schema(schema) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            _add(handle, engine)
            yield engine
        finally:
            engine.dispose()


def test_postgresql_reads_leave_no_transaction_open() -> None:
    # psycopg would begin one for the first SELECT and SQLAlchemy roll it back at the
    # end: two round trips a look-up, for nothing under READ COMMITTED.
    with _postgres_with_team("test_reads", "seen") as engine:
        with open_session(engine) as session:
            assert [t.handle for t in registry.list_teams(session)] == ["seen"]
            assert not _in_transaction(session)
        with transaction(engine) as session:
            assert [t.handle for t in registry.list_teams(session)] == ["seen"]
            assert _in_transaction(session)


def test_postgresql_one_statement_commits_as_it_runs() -> None:
    # The claims, seals and delivery marks: no BEGIN and COMMIT round trips around them.
    with _postgres_with_team("test_one_statement", "before") as engine:
        with one_statement(engine) as session:
            session.execute(text("UPDATE team SET handle = 'after'"))
            assert not _in_transaction(session)
            with open_session(engine) as other:  # committed before the block ends
                assert [t.handle for t in registry.list_teams(other)] == ["after"]
        with one_statement_connection(engine) as connection:  # the same, without a session
            connection.execute(text("UPDATE team SET handle = 'again'"))
            dbapi = connection.connection.dbapi_connection
            assert dbapi is not None and dbapi.info.transaction_status == IDLE
            with read_connection(engine) as other:
                assert other.execute(text("SELECT handle FROM team")).scalar() == "again"


def _backends_named(name: str) -> int:
    with postgres_admin().connect() as admin:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        return int(admin.execute(query, {"name": name}).scalar_one())


def test_postgresql_reads_use_a_pool_of_their_own_which_dispose_closes() -> None:
    # Autocommit sessions have their own pool: no switching a connection into autocommit
    # and back for each one. Disposing of the engine closes that pool's connections too.
    with _postgres_with_team("test_readers", "pooled") as engine:
        engine.dispose()
        with open_session(engine) as session:
            assert [t.handle for t in registry.list_teams(session)] == ["pooled"]
            name = str(session.execute(text("SELECT current_setting('application_name')")).scalar())
            reader = session.connection().connection.dbapi_connection
        with transaction(engine) as session:
            writer = session.connection().connection.dbapi_connection
        assert reader is not writer
        assert getattr(reader, "autocommit", None) is True
        assert getattr(writer, "autocommit", None) is False
        assert _backends_named(name) == 2  # both idle in their pools
        engine.dispose()
        _backends_gone(name)


def _backends_gone(name: str) -> None:
    """Until the server's processes for `name` end (each exits just after its client left)."""
    wait_until(
        lambda: _backends_named(name) == 0,
        f"the server's processes for {name} to end",
        seconds=10,
        interval=0.02,
    )


def test_one_statement_commits_and_wakes_commit_waiters(engine: Engine) -> None:
    _add("before", engine)
    seen = commits_so_far(engine)
    with one_statement(engine) as session:
        session.execute(text("UPDATE team SET handle = 'after'"))
    assert commits_so_far(engine) == seen + 1
    with open_session(engine) as session:
        assert [t.handle for t in registry.list_teams(session)] == ["after"]
    with one_statement_connection(engine) as connection:
        connection.execute(text("UPDATE team SET handle = 'again'"))
    assert commits_so_far(engine) == seen + 2
    with read_connection(engine) as connection:
        assert connection.execute(text("SELECT handle FROM team")).scalar() == "again"
    with pytest.raises(RuntimeError), one_statement_connection(engine) as connection:
        connection.execute(text("UPDATE team SET handle = 'lost'"))
        raise RuntimeError("boom")  # on SQLite rolled back; on PostgreSQL it ran already
    assert commits_so_far(engine) == seen + 2
    kept = "lost" if engine.dialect.name == "postgresql" else "again"
    with read_connection(engine) as connection:
        assert connection.execute(text("SELECT handle FROM team")).scalar() == kept


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
    wait_until(
        lambda: len(turn._changed._waiters) >= count,  # type: ignore[attr-defined]
        f"{count} writers to queue for the turn",
        seconds=10,
        interval=0.001,
    )


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


# --- the write turn between processes (SQLite) ---------------------------------------------

_WRITER = """
import sys
from sqlalchemy import text
from store.db import make_engine, transaction
url, name, urgent = sys.argv[1], sys.argv[2], sys.argv[3] == "urgent"
engine = make_engine(url)
print("ready", flush=True)
with transaction(engine, urgent=urgent) as s:
    s.execute(text("INSERT INTO turns (name) VALUES (:name)"), {"name": name})
    if len(sys.argv) > 4:  # hold the turn until killed
        print("holding", flush=True)
        sys.stdin.read()
"""


def _writer_process(
    url: str, name: str, urgent: bool, *, hold: bool = False
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", _WRITER, url, name, "urgent" if urgent else "normal"]
    process = subprocess.Popen(
        [*argv, "hold"] if hold else argv,
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def _blocked_on(path: Path, count: int) -> None:
    """Wait until `count` processes are blocked on the flock of `path` (/proc/locks says)."""
    inode = f":{os.stat(path).st_ino} "
    wait_until(
        lambda: sum("->" in line and inode in line for line in _proc_locks()) >= count,
        f"{count} writers to queue on {path.name}",
        seconds=20,
        interval=0.005,
    )


def _proc_locks() -> list[str]:
    return Path("/proc/locks").read_text().splitlines()


def _finished(process: subprocess.Popen[str]) -> int:
    process.communicate(timeout=20)  # closes its pipes
    return process.returncode


@pytest.fixture
def turns_table(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    with transaction(engine) as s:
        s.execute(text("CREATE TABLE turns (seq INTEGER PRIMARY KEY, name TEXT)"))
    yield url, engine
    engine.dispose()  # else its connection is left to the garbage collector (Python 3.13 warns)


def _turns(engine: Engine) -> list[str]:
    with open_session(engine) as s:
        return [row[0] for row in s.execute(text("SELECT name FROM turns ORDER BY seq"))]


def test_an_urgent_writer_of_another_process_goes_ahead_of_a_waiting_one(
    tmp_path: Path, turns_table: tuple[str, Engine]
) -> None:
    url, engine = turns_table
    with transaction(engine) as s:
        s.execute(text("INSERT INTO turns (name) VALUES ('holder')"))
        worker = _writer_process(url, "worker", urgent=False)
        _blocked_on(tmp_path / "db.sqlite-writer", 1)
        door = _writer_process(url, "door", urgent=True)
        _blocked_on(tmp_path / "db.sqlite-writer", 2)
    assert _finished(door) == 0 and _finished(worker) == 0
    assert _turns(engine) == ["holder", "door", "worker"]


def test_the_turn_of_a_writer_that_died_passes_to_the_next(
    tmp_path: Path, turns_table: tuple[str, Engine]
) -> None:
    url, engine = turns_table
    dying = _writer_process(url, "dying", urgent=True, hold=True)
    assert dying.stdout is not None and dying.stdout.readline() == "holding\n"
    waiting = _writer_process(url, "next", urgent=False)
    _blocked_on(tmp_path / "db.sqlite-writer", 1)
    dying.kill()
    _finished(dying)
    assert _finished(waiting) == 0
    assert _turns(engine) == ["next"]  # the dead writer's transaction was never committed
