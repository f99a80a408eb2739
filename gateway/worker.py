"""The engine room: claim spooled messages, run the pipeline, flush the outbox.

`run_once` processes everything claimable now (used by `process --once`); `run` loops
until told to stop, woken early when a door stores a message. A message whose
processing raises (a bug, or the database or gpg gone) keeps its lease until it expires,
so other messages go on; after `MAX_ATTEMPTS` it is quarantined as `processing-failed`
instead of blocking the queue forever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

from gateway.app import App
from gateway.delivery import Transport
from gateway.outbound import FlushResult, flush
from gateway.pipeline import Outcome, process_message
from store import spool
from store.db import open_session, transaction

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
LEASE_SECONDS = 300


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass
class Worker:
    app: App
    transport: Transport
    owner: str = ""

    def __post_init__(self) -> None:
        self.owner = self.owner or worker_name()

    def process_one(self, message_id: int) -> Outcome | None:
        try:
            return process_message(self.app, message_id, self.owner)
        except Exception:
            log.exception("processing message %s failed", message_id)
            self._give_up_if_exhausted(message_id)
            return None

    def _give_up_if_exhausted(self, message_id: int) -> None:
        with transaction(self.app.engine) as s:
            message = spool.get_message(s, message_id)
            if message is not None and message.attempts >= MAX_ATTEMPTS:
                spool.finish_message(
                    s,
                    message_id,
                    state="quarantined",
                    reason="processing-failed",
                    detail="processing raised an error repeatedly; see logs",
                )

    def run_once(self) -> dict[str, int]:
        """Process every message claimable now, each at most once (delivery is `flush`)."""
        seen: set[int] = set()
        counts: dict[str, int] = {}
        while (
            message_id := spool.claim_next_message(self.app.engine, self.owner, LEASE_SECONDS)
        ) is not None:
            if message_id in seen:
                spool.release_message(self.app.engine, message_id, self.owner)
                break
            seen.add(message_id)
            outcome = self.process_one(message_id)
            state = outcome.state if outcome else "error"
            counts[state] = counts.get(state, 0) + 1
        return counts

    def flush(self) -> FlushResult:
        return flush(
            self.app.engine,
            self.transport,
            owner=self.owner,
            max_attempts=self.app.config.outbound.max_attempts,
        )

    def run(self, stop: threading.Event, wake: threading.Event, *, idle_seconds: float = 5) -> None:
        while not stop.is_set():
            try:
                self.run_once()
                self.flush()
            except Exception:
                log.exception("worker cycle failed; retrying")
            wake.wait(idle_seconds)
            wake.clear()

    def pending(self) -> int:
        with open_session(self.app.engine) as s:
            return spool.count_by_state(s).get("received", 0)
