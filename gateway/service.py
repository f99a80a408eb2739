"""Long-running service: the SMTP door, the IMAP poller, the worker and the outbox.

`serve` starts the SMTP listener in a process of its own (gateway/intake/smtp_process.py) and, when
`[imap] host` is set, the IMAP poller in a thread, and runs the worker until SIGTERM or
SIGINT; a stored message wakes the worker at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator

from contract.codes import State
from contract.errors import ClearinghouseError
from gateway.allocator import keep_large_blocks_mapped
from gateway.app import App
from gateway.config.sections import usable_cores
from gateway.delivery import make_transport
from gateway.intake.imap_watch import start_poller
from gateway.intake.smtp_process import DoorProcess
from gateway.metrics import serve_metrics
from gateway.pipeline import Outcome, process_message
from gateway.worker import Worker
from store import leases, spool
from store.db import transaction

log = logging.getLogger(__name__)


def worker_for(app: App) -> Worker:
    transport = make_transport(app.config.outbound, app.config.clearinghouse.gateway_address)
    return Worker(app, transport, threads=app.config.worker.thread_count)


def _stop_on_signals(stop: threading.Event, wake: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the current message", signum)
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_worker_until_stopped(worker: Worker, wake: threading.Event | None = None) -> None:
    stop = threading.Event()
    wake = wake or threading.Event()
    _stop_on_signals(stop, wake)
    worker.run(stop, wake)


def serve(app: App, host: str, port: int) -> None:
    """Run until SIGTERM or SIGINT: the SMTP door (a process of its own), the IMAP poller,
    the worker and the outbox. Raises if the door process dies, so the service restarts."""
    keep_large_blocks_mapped()  # before any thread allocates: see gateway/allocator.py
    app.create_schema()
    app.identity  # noqa: B018 - fail now, not at the first message, if there is no key
    stop, wake, lost = threading.Event(), threading.Event(), threading.Event()

    def door_lost() -> None:
        lost.set()
        stop.set()
        wake.set()

    door = DoorProcess(app, host, port, on_stored=lambda _id: wake.set(), on_lost=door_lost)
    door.start()
    exporter = serve_metrics(app)  # None when [metrics] listen = ""
    log.info(
        "listening for SMTP on %s:%s; intake %s",
        host,
        port,
        ", ".join(app.config.clearinghouse.intake_addresses),
    )
    work = app.config.worker
    log.info(
        "worker: %d gpg processes at once, %d messages in the pipeline (%s)",
        work.gpg_slots,
        work.thread_count,
        "from [worker]" if work.concurrency and work.threads else f"{usable_cores()} cores",
    )
    poller, stop_poller = None, threading.Event()  # the poller stops when the worker does
    if app.config.imap.enabled:
        poller = start_poller(app, stop_poller, wake.set)
    try:
        _stop_on_signals(stop, wake)
        worker_for(app).run(stop, wake)
    finally:
        stop_poller.set()
        if poller is not None:
            poller.join(timeout=10)  # let it log out; it is a daemon thread either way
        door.stop()
        if exporter is not None:
            exporter.stop()
        log.info("stopped")
    if lost.is_set():
        raise ClearinghouseError("the SMTP door process exited; see the log above")


REPROCESSABLE = (State.QUARANTINED, State.REJECTED)


def reprocess(app: App, message_id: int | None) -> Iterator[tuple[int, Outcome]]:
    """Run one quarantined or rejected message (or every quarantined one) again.

    Accepted and duplicate messages are refused: their reports are stored already, and
    running them again would store them twice. Each message is claimed like the worker
    claims it, so a running `serve` never processes it at the same time.
    """
    with transaction(app.engine) as s:
        if message_id is None:
            ids = spool.requeue_quarantined(s)
        else:
            message = spool.get_message(s, message_id)
            if message is None:
                raise ClearinghouseError(f"no message {message_id}; see `messages list`")
            if message.purged_at is not None:
                raise ClearinghouseError(
                    f"message {message_id}: its raw bytes were purged ([retention]); "
                    "there is nothing to process again"
                )
            if message.state not in REPROCESSABLE:
                raise ClearinghouseError(
                    f"message {message_id} is {message.state}; only quarantined or rejected "
                    "messages can be reprocessed (a team corrects a report by sending it again)"
                )
            spool.requeue_message(s, message_id)
            ids = [message_id]
    worker = worker_for(app)
    for mid in ids:
        if leases.claim_message(app.engine, mid, worker.owner, app.config.worker.lease_seconds):
            yield mid, process_message(app, mid, worker.owner)
    worker.flush()
