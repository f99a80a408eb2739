"""Driving the pipeline from a test: spool messages as an MTA would, run the worker once,
and read what came out (each message's state and reason, what was stored, what was
queued to be sent).

In: an `App` and raw messages. Out: (state, reason) pairs, stored submissions, outbox
entries, and `assert_refused` for the common verdict on a hostile message. Nothing is
delivered: a transport that refuses fails the test if the worker tries.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from smtp_support import HOST, free_port
from support import INTAKE

from gateway.app import App
from gateway.delivery import MaildirTransport
from gateway.intake.smtp import make_controller
from gateway.spool import accept
from gateway.worker import Worker
from store import spool
from store.db import open_session
from store.monitoring import list_outbox
from store.submission_rows import SubmissionRow, list_submissions


def process_all(app: App, raws: Sequence[bytes]) -> list[tuple[str, str | None]]:
    """Spool each of `raws` as an MTA would, run the worker once; (state, reason) of each."""
    ids = [accept(app.engine, raw, "ingest")[0] for raw in raws]
    counts = Worker(app, transport=_Refuse()).run_once()
    assert "error" not in counts, "the pipeline raised"
    with open_session(app.engine) as s:
        messages = [spool.get_message(s, message_id) for message_id in ids]
        return [(m.state, m.reason) for m in messages if m is not None]


def process(app: App, raw: bytes) -> tuple[str, str | None]:
    """Spool `raw` as an MTA would and run the worker; returns (state, reason)."""
    [outcome] = process_all(app, [raw])
    return outcome


class _Refuse:
    def deliver(self, recipient: str, raw: bytes, key: str) -> None:
        raise AssertionError("these tests never deliver mail")


def outbox_entries(app: App) -> list[tuple[str, str, bytes]]:
    with open_session(app.engine) as s:
        return [(e.kind, e.recipient, e.raw) for e in list_outbox(s)]


def stored(app: App) -> list[SubmissionRow]:
    with open_session(app.engine) as s:
        return list_submissions(s)


def assert_refused(app: App, raw: bytes, reason: str, *, state: str = "quarantined") -> None:
    """The message ends refused with `reason`; nothing stored; no reply to anyone."""
    assert process(app, raw) == (state, reason)
    assert stored(app) == []
    assert outbox_entries(app) == [], "an unauthenticated message got a reply"


@contextmanager
def running_gateway(app: App, threads: int = 4) -> Iterator[int]:
    """The SMTP door on a free loopback port (yielded) and `threads` worker threads."""
    stop, wake = threading.Event(), threading.Event()
    worker = Worker(app, MaildirTransport(app.config.outbound.maildir), threads=threads)
    port = free_port()
    controller = make_controller(app, HOST, port, on_stored=lambda _id: wake.set())
    controller.start()
    runner = threading.Thread(target=worker.run, args=(stop, wake), kwargs={"idle_seconds": 1})
    runner.start()
    try:
        yield port
    finally:
        stop.set()
        wake.set()
        runner.join()
        controller.stop()


def send(port: int, sender: str, raw: bytes) -> int:
    """Send `raw` over SMTP; the id the door says it stored it as."""
    with smtplib.SMTP(HOST, port, timeout=120) as smtp:
        smtp.ehlo("client.example")
        smtp.mail(sender)
        smtp.rcpt(INTAKE)
        code, reply = smtp.data(raw)
    assert code == 250, reply
    return int(reply.decode().rsplit(" ", 1)[1])


def state_of(app: App, message_id: int) -> tuple[str, str | None]:
    with open_session(app.engine) as s:
        message = spool.get_message(s, message_id, raw=False)
        assert message is not None
        return message.state, message.reason


def wait_final(app: App, message_id: int, *, since: float, within: float) -> float | None:
    """Seconds from `since` (a time.monotonic()) until `message_id` leaves `received`;
    None if it is still there `within` seconds after `since` (the test then fails on its
    bound, without waiting longer)."""
    while time.monotonic() - since < within:
        if state_of(app, message_id)[0] != "received":
            return time.monotonic() - since
        time.sleep(0.02)  # polling the database for an event in another thread
    return None
