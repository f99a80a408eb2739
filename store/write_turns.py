"""Write turns on SQLite, and the commit clock that wakes whoever waits for a commit.

SQLite has one writer at a time. Left to itself, a waiting writer polls for the lock,
sleeping up to 100 ms between tries, so a short write (the SMTP door storing a message
before its 250) can starve behind a stream of longer ones (the workers' transactions).
Writers therefore queue for a turn instead, woken the moment it is free, urgent ones
first: the threads of one process on a condition, and the processes sharing one
database file (serve and its SMTP door, several `process` runs) on lock files beside it.

In: an engine. Out: `write_turn(engine, urgent)`, a context manager that holds the turn
(nothing on PostgreSQL, whose writers do not poll), and `commits(engine)`, this
process's count of commits on it (`store.db` ticks it after each commit).
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL

_TURNS_LOCK = threading.Lock()  # guards the registries of clocks and turns below


def database_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for another database, for memory, or for a `file:`
    URI we do not resolve."""
    database = url.database or ""
    if (
        url.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        return None
    return Path(database)


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


def commits(engine: Engine) -> _CommitClock:
    with _TURNS_LOCK:
        return _CLOCKS.setdefault(engine, _CommitClock())


def commits_so_far(engine: Engine) -> int:
    """How many transactions this process has committed on `engine` (see `wait_for_commit`)."""
    return commits(engine).count


def wait_for_commit(engine: Engine, seen: int, timeout: float) -> None:
    """Sleep until this process commits past `seen` on `engine`, or `timeout` passes.

    Read `commits_so_far` before looking at the database and pass it as `seen`: a commit
    made in between then ends the wait at once instead of being missed. Commits of other
    processes (other gateway instances) wake nobody here: callers poll for those with
    `timeout`.
    """
    clock = commits(engine)
    with clock.changed:
        clock.changed.wait_for(lambda: clock.count != seen, timeout)


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


def write_turn(engine: Engine, urgent: bool) -> AbstractContextManager[None]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _TURNS_LOCK:
        turn = _TURNS.get(engine)
        if turn is None:
            turn = _TURNS[engine] = _WriteTurn(_writer_lock(engine.url))
    return turn(urgent)


def _writer_lock(url: URL) -> _WriterLock | None:
    database = database_file(url)  # None: in memory (this process's alone), or a URI
    return None if database is None else _WriterLock(database.resolve())
