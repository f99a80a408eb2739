"""The engine room: claim spooled messages, run the pipeline, flush the outbox.

`run_once` processes everything claimable now (used by `process --once`); `run` keeps
processing until told to stop, woken early when a door stores a message, while a
thread of its own delivers the outbox. `threads` threads claim and process messages
side by side, while the gpg processes they start are capped at `[worker] concurrency`
(`keys.gpg.GnuPG`): with more threads than gpg slots, one thread's commit or parse
overlaps another's gpg, so the slots stay busy. Leases keep the threads (and other
gateway instances on the same database) off each other's messages. A message whose
processing raises (a bug, or the database or gpg gone) keeps its lease until it expires,
so other messages go on; after `MAX_ATTEMPTS` it is quarantined as `processing-failed`
instead of blocking the queue forever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from contract.codes import Reason, State
from gateway.app import App
from gateway.delivery import Transport
from gateway.logs import message_event
from gateway.outbox import FlushResult, flush
from gateway.pipeline import LARGE_MESSAGE_BYTES, Outcome, inline_bytes, process_message
from gateway.reply import seal_abandoned
from store import leases, spool
from store.db import open_session, transaction
from store.spool import Spooled

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_SECONDS = 60  # a message whose processing raised waits this long before a retry
DELIVERY_GATHER_SECONDS = 0.25  # replies sealed within this long go out in one flush
PASS_ON_SECONDS = 0.05  # how soon a thread that left a large message to others looks again


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass
class _Round:
    """One `run_once`, shared by its threads: what it took, how that ended, when to stop."""

    limit: int | None
    seen: set[int] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, message_id: int) -> bool:
        """Whether this round processes `message_id`: each at most once, `limit` in all."""
        with self.lock:
            if self.done or message_id in self.seen:
                self.done = True  # seen again: its lease expired during this very round
                return False
            self.seen.add(message_id)
            self.done = self.limit is not None and len(self.seen) >= self.limit
            return True

    def count(self, state: str) -> None:
        with self.lock:
            self.counts[state] = self.counts.get(state, 0) + 1


@dataclass
class Worker:
    """Processes spooled messages, `threads` at a time, and delivers the outbox."""

    app: App
    transport: Transport
    owner: str = ""
    threads: int = 1  # the service passes [worker] threads (from the machine by default)

    def __post_init__(self) -> None:
        self.owner = self.owner or worker_name()

    def process_one(
        self, message_id: int, owner: str | None = None, claimed: Spooled | None = None
    ) -> Outcome | None:
        with self.app.metrics.latency.time():
            try:
                return process_message(self.app, message_id, owner or self.owner, claimed)
            except Exception:
                log.exception("processing message %s failed", message_id)
                self.app.metrics.processing_errors.inc()
                # Not retried at once (it may fail the same way), and no longer "in
                # flight": newer messages need not wait for it to commit in order.
                leases.back_off(self.app.engine, message_id, owner or self.owner, RETRY_SECONDS)
                self._give_up_if_exhausted(message_id)
                return None

    def _give_up_if_exhausted(self, message_id: int) -> None:
        with transaction(self.app.engine) as s:
            message = spool.get_message(s, message_id)
            if message is None or message.attempts < MAX_ATTEMPTS:
                return
            spool.finish_message(
                s,
                message_id,
                state=State.QUARANTINED,
                reason=Reason.PROCESSING_FAILED,
                detail="processing raised an error repeatedly; see logs",
            )
        message_event(
            log, message_id, team=None, state=State.QUARANTINED, reason=Reason.PROCESSING_FAILED
        )
        self.app.metrics.outcome(State.QUARANTINED, Reason.PROCESSING_FAILED)

    def run_once(self, limit: int | None = None) -> dict[str, int]:
        """Process every message claimable now (or the first `limit`), each at most once.

        Returns how many ended in each state ("error" for those that raised). Delivery
        is `flush`.
        """
        batch = _Round(limit)
        if self.threads == 1:
            self._drain(0, batch)
        else:
            _in_threads(self.threads, lambda index: self._drain(index, batch))
        return batch.counts

    def _owner(self, index: int) -> str:
        """The lease owner of thread `index`: each thread holds its own leases."""
        return self.owner if index == 0 else f"{self.owner}/{index}"

    def _drain(self, index: int, batch: _Round) -> None:
        owner = self._owner(index)
        while not batch.done:
            claimed = self._claim(index)
            if claimed is None:
                return
            if not batch.take(claimed.id):
                leases.release_message(self.app.engine, claimed.id, owner)
                return
            outcome = self.process_one(claimed.id, owner, claimed)
            batch.count(outcome.state if outcome else "error")

    def _claim(self, index: int) -> Spooled | None:
        """The oldest unprocessed message, leased to thread `index`, read for processing.

        Only the first `[worker] concurrency` threads take a large message (over
        `LARGE_MESSAGE_BYTES`); the others take the oldest only when it is small. So no
        more large messages are in memory at once than gpg processes can work on, however
        many threads there are (with all four threads taking them, serve's peak RSS with
        four messages of 9.8 MiB was 212-217 MiB, against 166-170 with two threads:
        bench/throughput.py --large 4).
        """
        app = self.app
        return leases.claim_next(
            app.engine,
            self._owner(index),
            app.config.worker.lease_seconds,
            inline_bytes(app),
            only_up_to=LARGE_MESSAGE_BYTES if self._small_only(index) else None,
        )

    def _small_only(self, index: int) -> bool:
        """Whether thread `index` is one beyond `[worker] concurrency` (see `_claim`)."""
        return index >= self.app.config.worker.gpg_slots

    def flush(self) -> FlushResult:
        """Seal replies whose worker died before sealing them, then deliver what is due."""
        lease = self.app.config.worker.lease_seconds
        seal_abandoned(self.app, self.owner, lease_seconds=lease)
        return flush(
            self.app.engine,
            self.transport,
            owner=self.owner,
            max_attempts=self.app.config.outbound.max_attempts,
            lease_seconds=self.app.config.worker.lease_seconds,
        )

    def run(self, stop: threading.Event, wake: threading.Event, *, idle_seconds: float = 5) -> None:
        """Process and deliver until `stop`: `threads` threads process, one delivers.

        A processing thread that finds nothing to claim sleeps until `wake` (set by the
        doors when they store a message) or `idle_seconds`; the delivery thread is woken
        by each processed message, and looks for due retries every `idle_seconds`.
        Nothing waits for a batch to end, so delivery never pauses processing.
        """
        delivered = threading.Event()
        threads = [
            threading.Thread(
                target=self._keep_processing,
                args=(index, stop, wake, delivered, idle_seconds),
                name=f"worker-{index}",
            )
            for index in range(self.threads)
        ]
        threads.append(
            threading.Thread(
                target=self._keep_delivering,
                args=(stop, delivered, idle_seconds),
                name="delivery",
            )
        )
        for thread in threads:
            thread.start()
        stop.wait()
        wake.set()
        delivered.set()
        for thread in threads:
            thread.join()

    def _keep_processing(
        self,
        index: int,
        stop: threading.Event,
        wake: threading.Event,
        delivered: threading.Event,
        idle_seconds: float,
    ) -> None:
        while not stop.is_set():
            # Cleared before looking, so a message stored after the look sets it again
            # and the wait below returns at once: no wake-up is lost between the two.
            wake.clear()
            try:
                claimed = self._claim(index)
            except Exception:
                log.exception("claiming a message failed; retrying")
                stop.wait(idle_seconds)
                continue
            if claimed is None:
                self._idle(index, stop, wake, idle_seconds)
                continue
            wake.set()  # there may be more: let an idle thread look too
            self.process_one(claimed.id, self._owner(index), claimed)
            delivered.set()

    def _idle(
        self, index: int, stop: threading.Event, wake: threading.Event, idle_seconds: float
    ) -> None:
        """Wait for work after thread `index` found none it may take.

        A thread that leaves a large message to the others may have cleared the wake-up
        one of them needed: it passes it on and looks again shortly, instead of sleeping
        on the wake-up it would set itself.
        """
        if self._small_only(index) and leases.oldest_larger(self.app.engine, LARGE_MESSAGE_BYTES):
            wake.set()
            stop.wait(PASS_ON_SECONDS)
            return
        wake.wait(idle_seconds)

    def _keep_delivering(
        self, stop: threading.Event, delivered: threading.Event, idle_seconds: float
    ) -> None:
        while not stop.is_set():
            delivered.clear()
            try:
                self.flush()
            except Exception:
                log.exception("delivering the outbox failed; retrying")
            if delivered.wait(idle_seconds):
                # Gather what the next moments process into one flush: a flush per
                # message would take the database's write turn from the SMTP door.
                stop.wait(DELIVERY_GATHER_SECONDS)

    def pending(self) -> int:
        with open_session(self.app.engine) as s:
            return spool.count_in_state(s, State.RECEIVED)


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run `work(0)` ... `work(count - 1)` in threads; re-raise the first that failed."""
    with ThreadPoolExecutor(count, thread_name_prefix="worker") as pool:
        for future in [pool.submit(work, index) for index in range(count)]:
            future.result()
