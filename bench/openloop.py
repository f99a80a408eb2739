"""Mail offered at a steady rate, whatever the gateway does with it: the latency to a
sealed receipt under a sustained load, not under a burst.

In: the gateway's SMTP port and engine, the mails to send and the rate to send them at.
Out: for each mail, when its SMTP 250 came and when its receipt was seen sealed in the
outbox (looked for every `POLL` seconds, on a plain DB-API connection), and how late the
senders were against the schedule. An open-loop sender: mail i is sent at start + i/rate
by whichever of the `senders` connections is free, not when the previous one is
answered, so a gateway that falls behind meets the same offered load, and its queue and
its latency grow instead of the load easing.
"""

from __future__ import annotations

import re
import smtplib
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bench.traffic import client_address

POLL = 0.02  # seconds between two looks at the outbox
INTAKE = "stats@clearinghouse.example"
HOST = "127.0.0.1"


@dataclass
class Offered:
    """What happened to the open-loop mails."""

    accepted: dict[int, float] = field(default_factory=dict)  # message id -> 250 at
    sealed: dict[int, float] = field(default_factory=dict)  # message id -> seen sealed at
    lateness: list[float] = field(default_factory=list)  # sent this long after its slot
    seconds: float = 0.0  # from the first slot until the last receipt was sealed

    def to_receipt(self) -> list[float]:
        """Seconds from each mail's SMTP 250 to its receipt seen sealed."""
        return [self.sealed[m] - at for m, at in self.accepted.items() if m in self.sealed]


def offer(
    port: int, engine: Engine, mails: list[tuple[str, bytes]], rate: float, senders: int
) -> Offered:
    """Send `mails` at `rate` a second from `senders` connections; wait for every receipt."""
    found, lock = Offered(), threading.Lock()
    start = time.perf_counter() + 0.2  # the connections are up by then
    slots = iter(enumerate(mails))
    stop = threading.Event()
    first_entry = _newest_entry(engine)
    watcher = threading.Thread(target=_watch, args=(engine, first_entry, found, lock, stop))
    watcher.start()
    try:
        threads = [
            threading.Thread(target=_sender, args=(port, i, slots, start, rate, found, lock))
            for i in range(senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _until_all_sealed(found, lock)
    finally:
        stop.set()
        watcher.join()
    found.seconds = max(found.sealed.values(), default=start) - start
    return found


def _sender(
    port: int,
    index: int,
    slots: object,
    start: float,
    rate: float,
    found: Offered,
    lock: threading.Lock,
) -> None:
    with smtplib.SMTP(HOST, port, timeout=120, source_address=client_address(index)) as smtp:
        smtp.ehlo("bench.example")
        while True:
            with lock:
                taken = next(slots, None)  # type: ignore[call-overload]
            if taken is None:
                return
            index, (sender, raw) = taken
            due = start + index / rate
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            sent_at = time.perf_counter()
            smtp.mail(sender)
            smtp.rcpt(INTAKE)
            code, reply = smtp.data(raw)
            answered = time.perf_counter()
            match = re.search(rb"Queued as (\d+)", reply)
            if code != 250 or match is None:
                raise RuntimeError(f"not accepted: {code} {reply!r}")
            with lock:
                found.accepted[int(match[1])] = answered
                found.lateness.append(max(0.0, sent_at - due))


_SEALED = (
    "SELECT message_id FROM outboxentry WHERE id > %s AND kind = 'receipt' AND state <> 'unsealed'"
)


def _newest_entry(engine: Engine) -> int:
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT coalesce(max(id), 0) FROM outboxentry")
        return int(cursor.fetchone()[0])
    finally:
        connection.close()


def _watch(
    engine: Engine, after: int, found: Offered, lock: threading.Lock, stop: threading.Event
) -> None:
    """Note when each receipt is first seen sealed, looking every POLL seconds."""
    connection = engine.raw_connection()
    query = _SEALED if engine.dialect.name == "postgresql" else _SEALED.replace("%s", "?")
    try:
        if engine.dialect.name == "postgresql":
            connection.autocommit = True
        cursor = connection.cursor()
        while not stop.is_set():
            cursor.execute(query, (after,))
            seen = time.perf_counter()
            with lock:
                for (message_id,) in cursor.fetchall():
                    found.sealed.setdefault(int(message_id), seen)
            if engine.dialect.name != "postgresql":
                connection.rollback()  # a fresh snapshot at the next look
            stop.wait(POLL)
    finally:
        connection.close()


def _until_all_sealed(found: Offered, lock: threading.Lock, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if all(m in found.sealed for m in found.accepted):
                return
        time.sleep(POLL)
    raise RuntimeError("open loop: not every receipt was sealed in time")
