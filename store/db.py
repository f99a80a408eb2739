"""Engines, sessions and transactions: how the rest of the gateway reaches the database.

In: a SQLAlchemy URL (SQLite for one instance, PostgreSQL for several sharing one
store). Out: an `Engine` tuned for durability and concurrent workers, plain sessions,
and `transaction()`, the one place where "stored" becomes "committed".
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session

import store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from store.write_turns import commits, write_turn

# Applied to every new SQLite connection. busy_timeout comes first so that switching
# the journal mode waits for a concurrent connection instead of failing; FULL
# synchronous makes a commit survive power loss in WAL mode, not just a crash.
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=10000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets its pragmas and thread freedom. Nothing is created
    here: `clearinghouse init` makes the data directory (see App.initialise)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        engine = _postgres_engine(parsed)
        readers = _postgres_engine(parsed, isolation_level="AUTOCOMMIT")
        _READERS[engine] = readers
        event.listen(engine, "engine_disposed", lambda _engine: readers.dispose())
        return engine
    return create_engine(parsed)


# PostgreSQL engines made here keep a second pool, in autocommit, for `open_session` and
# `one_statement` (see there); an engine made elsewhere gets an autocommit view instead.
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


# A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 2.0


def _postgres_engine(url: URL, **options: Any) -> Engine:
    """An engine whose connections are checked at checkout if they sat idle.

    Several gateways share the server; a connection dropped by a restart or an idle
    timeout is noticed at checkout instead of failing a transaction (SQLAlchemy's
    pessimistic disconnect handling). Pinging only connections that sat idle spares a
    busy worker a round trip per transaction: pinging every checkout (`pool_pre_ping`)
    cost each message eight round trips. A connection that broke while busy fails its
    transaction, which the worker retries.
    """
    engine = create_engine(url, **options)
    dialect = engine.dialect

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"idle connection lost: {exc}") from exc

    def note_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    event.listen(engine, "checkout", ping_if_idle)
    event.listen(engine, "checkin", note_checkin)
    return engine


def _sqlite_engine(url: URL) -> Engine:
    # Workers, the SMTP listener and the outbox share one engine across threads.
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def open_session(engine: Engine) -> Session:
    """A session for reading, whose objects stay readable (no reload per attribute).

    On PostgreSQL its statements run in autocommit: each reads what is committed when it
    runs, as each statement of a READ COMMITTED transaction would, without the BEGIN and
    the ROLLBACK that psycopg would wrap around them (two round trips of three, for the
    several look-ups each message takes). Writes go through `transaction`.
    """
    return Session(_readers(engine), expire_on_commit=False)


def _readers(engine: Engine) -> Engine:
    """Where reads and single statements go: on PostgreSQL, the autocommit twin of
    `engine`, with its own pool, made with it; elsewhere `engine` itself.

    Its own pool, not a view of the engine's (`execution_options(isolation_level=...)`):
    a view is made anew for each session (kept, it would keep the engine alive) and
    switches each connection into autocommit and back, which cost each session 120 µs
    of CPU, a tenth of a worker's own time per message (py-spy, `serve` on PostgreSQL).
    """
    if engine.dialect.name != "postgresql":
        return engine
    readers = _READERS.get(engine)
    if readers is None:  # an engine not made by `make_engine`
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return readers


@contextmanager
def transaction(engine: Engine, *, urgent: bool = False) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises.

    `urgent` is for writes someone is waiting on (a door storing a message before its
    SMTP 250): on SQLite they take the next write turn ahead of the workers' writes.
    """
    with write_turn(engine, urgent):
        session = Session(engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    commits(engine).tick()


@contextmanager
def one_statement(engine: Engine, *, urgent: bool = False) -> Iterator[Session]:
    """A `transaction` for ONE write statement (plus reads): committed as it runs.

    On PostgreSQL the statement runs in autocommit, so it is a transaction of its own
    (all of it or nothing, durable when it returns) without the BEGIN and COMMIT round
    trips psycopg would add around it: the claims, seals and delivery marks each message
    takes. Two writes in one block would commit separately; use `transaction` for those.
    On SQLite it is `transaction` (`urgent` as there).
    """
    if engine.dialect.name != "postgresql":
        with transaction(engine, urgent=urgent) as session:
            yield session
        return
    with open_session(engine) as session:
        yield session
    commits(engine).tick()


@contextmanager
def one_statement_connection(engine: Engine, *, urgent: bool = False) -> Iterator[Connection]:
    """`one_statement` as a Core connection, for the statements every message runs (the
    claim, the seal, the delivery mark): an ORM session around one Core statement cost
    more Python than the statement (a tenth of a worker's, py-spy, serve on PostgreSQL).
    """
    if engine.dialect.name != "postgresql":
        with write_turn(engine, urgent), engine.begin() as connection:
            yield connection
    else:
        with _readers(engine).connect() as connection:
            yield connection
    commits(engine).tick()


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """`open_session` as a Core connection: reads that build no ORM objects."""
    with _readers(engine).connect() as connection:
        yield connection
