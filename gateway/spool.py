"""Writing to the spool, for every intake door: raw bytes in, a committed id out.

`accept` stores one message (`ingest`, IMAP); `GroupSpooler` stores what the SMTP door
receives, grouped: what arrives while a commit is under way goes in the next. Headers
that imitate the gateway's own status headers (`X-Clearinghouse-*`) are dropped before a
message is stored, so nothing downstream can mistake them for ours. The domain of the
outer From is recorded with it (`keys.headers.sender_domain`: arrival order is kept per
sending domain). The caller acknowledges (SMTP 250, IMAP move, exit 0) only after the
commit that holds its message.

Grouping: each store is a write turn on the database and a commit. With one transaction
a message, 20 senders ending DATA together queued for 20 turns, each behind whatever
worker transaction held SQLite's lock, and 20 threads waited in turn for that (SMTP
accept p50 ~50 ms of queueing before the store even began, measured in the door). One
storing thread instead takes everything waiting, stores it in one transaction and
answers each sender. If a group cannot be stored, each of its messages is tried alone,
so a message that cannot be stored costs no other sender its 250.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from contract.errors import StorageError
from keys.headers import HeaderLimits, sender_domain
from store.readiness import brief, describe
from store.spool import Incoming, spool_message, spool_messages

STATUS_FIELD = re.compile(rb"x-clearinghouse-[^:\r\n]*:", re.I)  # at a line's start
LINE_END = re.compile(rb"\r\n|\r|\n")
STATUS_ANYWHERE = re.compile(rb"x-clearinghouse-", re.I)
# Where a blank line can begin after the first: a line ends (LF, or a CR not followed by
# LF) and the next line is empty (starts with CR or LF). A CR LF pair is one line end.
BLANK_LINE_AFTER = re.compile(rb"\n\r|\n\n|\r\r")

log = logging.getLogger(__name__)


def accept_many(
    engine: Engine, incoming: Sequence[Incoming], headers: HeaderLimits | None = None
) -> list[int]:
    """Store several raw messages durably in one commit (all or none); returns their ids."""
    limits = headers or HeaderLimits()
    stripped = [
        replace(
            one, raw=strip_status_headers(one.raw), sender_domain=sender_domain(one.raw, limits)
        )
        for one in incoming
    ]
    try:
        return spool_messages(engine, stripped)
    except SQLAlchemyError as exc:
        log.warning("could not store: %s", describe(exc, engine.url))
        raise StorageError(f"could not store the messages: {brief(exc)}") from exc


def strip_status_headers(raw: bytes) -> bytes:
    """Remove `X-Clearinghouse-*` fields (with their continuation lines) from the header.

    Only the header is looked at, in place, and the message is copied only when a field
    is removed: messages of 10 MiB come through here, and the door holds them as it is.
    """
    end = _header_end(raw)
    if not STATUS_ANYWHERE.search(raw, 0, end):
        return raw
    return b"".join([*_without_status_fields(raw[:end]), memoryview(raw)[end:]])


def _header_end(raw: bytes) -> int:
    """Where the first blank line begins (the header ends there), else the end of `raw`.

    Lines end at CRLF, LF or CR alike, as for the email parser that reads the message
    later: splitting at one kind only would let a mixed-ending header hide a status field
    (or end the header in the body).
    """
    if raw[:1] in (b"\r", b"\n"):
        return 0
    found = BLANK_LINE_AFTER.search(raw)
    return found.start() + 1 if found else len(raw)


def _without_status_fields(header: bytes) -> list[bytes]:
    """The header's pieces between status fields (each field with its continuation
    lines dropped), every line with its own ending.

    Found where "x-clearinghouse-" occurs at the start of a line, not by splitting the
    header into lines: a header of two million lines, split, held some 80 MB.
    """
    kept: list[bytes] = []
    at = 0
    for found in STATUS_ANYWHERE.finditer(header):
        start = found.start()
        at_line_start = start == 0 or header[start - 1] in b"\r\n"
        if start < at or not at_line_start or not STATUS_FIELD.match(header, start):
            continue
        kept.append(header[at:start])
        at = _field_end(header, start)
    kept.append(header[at:])
    return kept


def _field_end(header: bytes, start: int) -> int:
    """Where the field starting at `start` ends: after its last continuation line."""
    position = start
    while True:
        line_end = LINE_END.search(header, position)
        if line_end is None:
            return len(header)
        position = line_end.end()
        if header[position : position + 1] not in (b" ", b"\t"):
            return position


def accept(
    engine: Engine,
    raw: bytes,
    channel: str,
    *,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
    intake_key: str | None = None,
    headers: HeaderLimits | None = None,
) -> tuple[int, bool]:
    """Store one raw message durably; returns (message id, newly stored)."""
    try:
        return spool_message(
            engine,
            strip_status_headers(raw),
            channel,
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            intake_key=intake_key,
            sender_domain=sender_domain(raw, headers or HeaderLimits()),
        )
    except SQLAlchemyError as exc:
        log.warning("could not store: %s", describe(exc, engine.url))
        raise StorageError(f"could not store the message: {brief(exc)}") from exc


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

    def __init__(self, engine: Engine, headers: HeaderLimits | None = None) -> None:
        self._engine = engine
        self._headers = headers
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
            ids = accept_many(self._engine, [w.incoming for w in group], self._headers)
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
