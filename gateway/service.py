"""Long-running service: the SMTP door, the worker and the outbox in one process.

`serve` starts the SMTP listener in its own thread and runs the worker loop in the main
thread until SIGTERM or SIGINT; a stored message wakes the worker at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator

from gateway.app import App
from gateway.delivery import make_transport
from gateway.errors import ClearinghouseError
from gateway.pipeline import Outcome, process_message
from gateway.smtp import make_controller
from gateway.worker import Worker
from store import spool
from store.db import transaction

log = logging.getLogger(__name__)


def worker_for(app: App) -> Worker:
    transport = make_transport(app.config.outbound, app.config.clearinghouse.gateway_address)
    return Worker(app, transport)


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
    app.create_schema()
    app.identity  # noqa: B018 - fail now, not at the first message, if there is no key
    wake = threading.Event()
    controller = make_controller(app, host, port, on_stored=lambda _id: wake.set())
    controller.start()
    log.info(
        "listening for SMTP on %s:%s; intake %s",
        host,
        port,
        ", ".join(app.config.clearinghouse.intake_addresses),
    )
    try:
        run_worker_until_stopped(worker_for(app), wake)
    finally:
        controller.stop()
        log.info("stopped")


def reprocess(app: App, message_id: int | None) -> Iterator[tuple[int, Outcome]]:
    """Requeue one message (or every quarantined one) and run it through the pipeline."""
    with transaction(app.engine) as s:
        if message_id is not None:
            if not spool.requeue_message(s, message_id):
                raise ClearinghouseError(f"no message {message_id}; see `messages list`")
            ids = [message_id]
        else:
            ids = spool.requeue_quarantined(s)
    worker = worker_for(app)
    for mid in ids:
        outcome = process_message(app, mid)
        yield mid, outcome
    worker.flush()
