"""Engines, sessions and transactions: how the rest of the gateway reaches the database.

In: a SQLAlchemy URL (SQLite for one instance, PostgreSQL for several sharing one
store). Out: an `Engine` tuned for durability and concurrent workers, plain sessions,
and `transaction()`, the one place where "stored" becomes "committed".
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session

import store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

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
    """An engine for `url`; SQLite gets its directory, pragmas and thread freedom."""
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


def _database_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for memory, or a `file:` URI we do not resolve."""
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_engine(url: URL) -> Engine:
    database = _database_file(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
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


def create_schema(engine: Engine) -> None:
    """Bring the schema to the newest revision (store/migrate.py), keeping every row."""
    from store.migrate import upgrade  # it builds on this module

    upgrade(engine)


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
    with _write_turn(engine, urgent):
        session = Session(engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    _commits(engine).tick()


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
    _commits(engine).tick()


@contextmanager
def one_statement_connection(engine: Engine, *, urgent: bool = False) -> Iterator[Connection]:
    """`one_statement` as a Core connection, for the statements every message runs (the
    claim, the seal, the delivery mark): an ORM session around one Core statement cost
    more Python than the statement (a tenth of a worker's, py-spy, serve on PostgreSQL).
    """
    if engine.dialect.name != "postgresql":
        with _write_turn(engine, urgent), engine.begin() as connection:
            yield connection
    else:
        with _readers(engine).connect() as connection:
            yield connection
    _commits(engine).tick()


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """`open_session` as a Core connection: reads that build no ORM objects."""
    with _readers(engine).connect() as connection:
        yield connection


class _CommitClock:
    """Counts this process's commits on one engine, so a waiter wakes on the next one."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def tick(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()


_CLOCKS: weakref.WeakKeyDictionary[Engine, _CommitClock] = weakref.WeakKeyDictionary()


def _commits(engine: Engine) -> _CommitClock:
    with _TURNS_LOCK:
        return _CLOCKS.setdefault(engine, _CommitClock())


def commits_so_far(engine: Engine) -> int:
    """How many transactions this process has committed on `engine` (see `wait_for_commit`)."""
    return _commits(engine).count


def wait_for_commit(engine: Engine, seen: int, timeout: float) -> None:
    """Sleep until this process commits past `seen` on `engine`, or `timeout` passes.

    Read `commits_so_far` before looking at the database and pass it as `seen`: a commit
    made in between then ends the wait at once instead of being missed. Commits of other
    processes (other gateway instances) wake nobody here: callers poll for those with
    `timeout`.
    """
    clock = _commits(engine)
    with clock.changed:
        clock.changed.wait_for(lambda: clock.count != seen, timeout)


# SQLite has one writer at a time. Left to itself, a waiting writer polls for the lock,
# sleeping up to 100 ms between tries, so a short write (the SMTP door storing a message
# before its 250) can starve behind a stream of longer ones (the workers' transactions).
# Writers therefore queue for a turn instead, woken the moment it is free, urgent ones
# first: the threads of one process on a condition, and the processes sharing one
# database file (serve and its SMTP door, several `process` runs) on lock files beside it.
class _WriterLock:
    """SQLite's write turn between processes: `flock`s on two files beside the database.

    The turn file is held by the one writing process. An urgent writer holds the urgent
    file shared from before it queues until it is done; a non-urgent writer that gets
    the turn while that file is held gives the turn back and waits for the urgent ones.
    The kernel wakes a waiter the moment a lock is released, and drops a dead process's.
    """

    def __init__(self, database: Path) -> None:
        self._database = database
        self._open()

    def _open(self) -> None:
        # A forked child would share these open files, and so their locks: it opens its own.
        self._pid = os.getpid()
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self._turn = os.open(f"{self._database}-writer", flags, 0o600)
        self._urgent = os.open(f"{self._database}-urgent", flags, 0o600)
        weakref.finalize(self, _close, self._turn, self._urgent)

    def acquire(self, urgent: bool) -> None:
        if self._pid != os.getpid():
            self._open()
        if urgent:
            fcntl.flock(self._urgent, fcntl.LOCK_SH)
            fcntl.flock(self._turn, fcntl.LOCK_EX)
            return
        while True:
            fcntl.flock(self._turn, fcntl.LOCK_EX)
            try:
                fcntl.flock(self._urgent, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # an urgent writer of another process is waiting
                fcntl.flock(self._turn, fcntl.LOCK_UN)
                fcntl.flock(self._urgent, fcntl.LOCK_EX)  # until every urgent one is done
                fcntl.flock(self._urgent, fcntl.LOCK_UN)
                continue
            fcntl.flock(self._urgent, fcntl.LOCK_UN)
            return

    def release(self, urgent: bool) -> None:
        fcntl.flock(self._turn, fcntl.LOCK_UN)
        if urgent:
            fcntl.flock(self._urgent, fcntl.LOCK_UN)


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class _WriteTurn:
    """One writer at a time (re-entrant per thread); waiting urgent writers go first.

    With a `_WriterLock`, the outermost turn of a thread also takes it, so the turn is
    one across every process that uses the same database file.
    """

    def __init__(self, between_processes: _WriterLock | None = None) -> None:
        self._changed = threading.Condition()
        self._holder: int | None = None
        self._depth = 0
        self._urgent_waiting = 0
        self._processes = between_processes
        self._urgent = False

    @contextmanager
    def __call__(self, urgent: bool) -> Iterator[None]:
        self._take(urgent)
        try:
            yield
        finally:
            self._give_back()

    def _free_for(self, urgent: bool) -> bool:
        return self._holder is None and (urgent or self._urgent_waiting == 0)

    def _take(self, urgent: bool) -> None:
        me = threading.get_ident()
        with self._changed:
            if self._holder == me:
                self._depth += 1
                return
            self._urgent_waiting += urgent
            try:
                self._changed.wait_for(lambda: self._free_for(urgent))
            finally:
                self._urgent_waiting -= urgent
            self._holder, self._depth, self._urgent = me, 1, urgent
        if self._processes is not None:
            try:
                self._processes.acquire(urgent)
            except BaseException:
                self._release_here()
                raise

    def _give_back(self) -> None:
        with self._changed:
            self._depth -= 1
            if self._depth > 0:
                return
        try:
            if self._processes is not None:
                self._processes.release(self._urgent)
        finally:
            self._release_here()

    def _release_here(self) -> None:
        with self._changed:
            self._holder, self._depth = None, 0
            self._changed.notify_all()


_TURNS: weakref.WeakKeyDictionary[Engine, _WriteTurn] = weakref.WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def _write_turn(engine: Engine, urgent: bool) -> AbstractContextManager[None]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _TURNS_LOCK:
        turn = _TURNS.get(engine)
        if turn is None:
            turn = _TURNS[engine] = _WriteTurn(_writer_lock(engine.url))
    return turn(urgent)


def _writer_lock(url: URL) -> _WriterLock | None:
    database = _database_file(url)  # None: in memory (this process's alone), or a URI
    return None if database is None else _WriterLock(database.resolve())
