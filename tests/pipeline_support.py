"""Driving the pipeline from a test: spool messages as an MTA would, run the worker once,
and read what came out (each message's state and reason, what was stored, what was
queued to be sent).

In: an `App` and raw messages. Out: (state, reason) pairs, stored submissions, outbox
entries, and `assert_refused` for the common verdict on a hostile message. Nothing is
delivered: a transport that refuses fails the test if the worker tries.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.app import App
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
