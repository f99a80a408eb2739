"""The SMTP door's stores, grouped: what arrives while a commit is under way goes in the next.

Each store is a write turn on the database and a commit. With one transaction a message,
20 senders ending DATA together queued for 20 turns, each behind whatever worker
transaction held SQLite's lock, and 20 threads waited in turn for that (SMTP accept p50
~50 ms of queueing before the store even began, measured in the door). One storing
thread instead takes everything waiting, stores it in one transaction and answers each
sender: a 250 still comes only after the commit that holds its message. If a group
cannot be stored, each of its messages is tried alone, so a message that cannot be
stored costs no other sender its 250.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from gateway.intake import accept_many
from store.spool import Incoming

log = logging.getLogger(__name__)

MAX_GROUP = 64  # messages in one transaction
# A group is closed once it holds this much: SQLite's driver copies each message it binds,
# so two 10 MiB messages in one group held 10 MiB more at once (door peak RSS 128 -> 119
# MiB with 4 MiB, bench/throughput.py --large 4). Small messages still group by dozens.
MAX_GROUP_BYTES = 4 * 2**20


@dataclass(frozen=True)
class _Waiting:
    incoming: Incoming
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]


class GroupSpooler:
    """One thread that stores the doors' messages, as many to a commit as are waiting."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.storing = 0  # messages in the group being stored now

    def waiting(self) -> int:
        """Messages waiting for the group being stored now to be committed."""
        return self._queue.qsize()

    async def store(self, incoming: Incoming) -> int:
        """Store `incoming`; returns its id once committed, raises if it cannot be stored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="spooler", daemon=True)
                self._thread.start()
            self._queue.put(_Waiting(incoming, loop, future))
        return await future

    def close(self) -> None:
        """Store what is waiting, then stop the thread (a later `store` starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while (group := self._next_group()) is not None:
            self.storing = len(group)
            self._store(group)
            self.storing = 0

    def _next_group(self) -> list[_Waiting] | None:
        first = self._queue.get()
        if first is None:
            return None
        group, size = [first], len(first.incoming.raw)
        while len(group) < MAX_GROUP and size < MAX_GROUP_BYTES:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)  # told to stop: after this group
                break
            group.append(more)
            size += len(more.incoming.raw)
        return group

    def _store(self, group: list[_Waiting]) -> None:
        try:
            ids = accept_many(self._engine, [waiting.incoming for waiting in group])
        except Exception as exc:  # noqa: BLE001 - told to each sender's session
            if len(group) > 1:
                log.warning("could not store %d messages together; storing each alone", len(group))
                for waiting in group:
                    self._store([waiting])
                return
            _settle(group[0], exc)
            return
        for waiting, message_id in zip(group, ids, strict=True):
            _settle(waiting, message_id)


def _settle(waiting: _Waiting, outcome: int | Exception) -> None:
    """Answer the waiting session, in its event loop: the stored id, or why not."""

    def settle() -> None:
        if waiting.future.done():  # the session is gone (connection lost)
            return
        if isinstance(outcome, Exception):
            waiting.future.set_exception(outcome)
        else:
            waiting.future.set_result(outcome)

    try:
        waiting.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # its event loop has stopped: nobody is waiting for the answer
        log.info("an SMTP session ended before its store did (%r)", outcome)
