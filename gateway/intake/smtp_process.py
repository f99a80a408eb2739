"""The SMTP door of `serve` in a process of its own.

The workers' Python (MIME, the ORM, python-gnupg's reader threads) holds one interpreter
lock; an SMTP conversation in the same process waits for it at every line it answers, so
senders waited for the workers (p50 accept 60-120 ms with 20 senders). In its own process
the door answers at once. It stores each message itself (the spool is shared through the
database, as between gateway instances) and tells `serve` the new id over a pipe, which
wakes the worker; nothing else crosses over.

The door stops when `serve` tells it to (after the worker has stopped) or when `serve` is
gone (its pipe closes); it ignores SIGTERM and SIGINT, which systemd and a terminal send
to the whole group, so that it is `serve` that decides. If the door dies, `serve` is told
(`on_lost`) and stops too, so that systemd restarts the whole service.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from contract.errors import ClearinghouseError
from gateway.allocator import keep_large_blocks_mapped
from gateway.app import App
from gateway.config import Config
from gateway.logs import LogFormat, current_format, setup_logging

log = logging.getLogger(__name__)

START_SECONDS = 60  # from spawning the process to its first accepted connection
STOP_SECONDS = 20  # for a DATA phase in progress to end after being told to stop
READY = "ready"
STOP = "stop"


@dataclass(frozen=True)
class _Settings:
    """What the door process is started with (it builds its own `App`)."""

    config: Config
    host: str
    port: int
    log_format: LogFormat
    log_level: int


class DoorProcess:
    """`serve`'s handle on the door: start it, hear of stored messages, stop it."""

    def __init__(
        self,
        app: App,
        host: str,
        port: int,
        on_stored: Callable[[int], None],
        on_lost: Callable[[], None],
    ) -> None:
        settings = _Settings(app.config, host, port, current_format(), logging.getLogger().level)
        context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._events, child_events = context.Pipe(duplex=False)
        child_orders, self._orders = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_door_main,
            args=(settings, child_events, child_orders),
            name="clearinghouse-smtp-door",
            daemon=True,
        )
        self._on_stored, self._on_lost = on_stored, on_lost
        self._stopping = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="door-events", daemon=True)

    def start(self) -> None:
        """Start the door; returns once it listens, raises if it cannot."""
        self._process.start()
        if not self._events.poll(START_SECONDS):
            self._process.kill()
            raise ClearinghouseError(f"the SMTP door did not start within {START_SECONDS} s")
        try:
            first = self._events.recv()
        except EOFError:
            raise ClearinghouseError("the SMTP door exited while starting; see the log") from None
        if first != READY:
            self._process.join(STOP_SECONDS)
            raise ClearinghouseError(f"the SMTP door could not start: {first}")
        self._listener.start()

    def _listen(self) -> None:
        while True:
            try:
                message_id = self._events.recv()
            except (EOFError, OSError):
                break
            self._on_stored(int(message_id))
        if not self._stopping.is_set():
            log.error("the SMTP door process exited (code %s); stopping", self._process.exitcode)
            self._on_lost()

    def stop(self) -> None:
        """Tell the door to stop and wait for it (a DATA phase in progress may end)."""
        self._stopping.set()
        try:
            self._orders.send(STOP)
        except OSError:
            pass  # it is gone already
        self._process.join(STOP_SECONDS)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STOP_SECONDS)


def _door_main(settings: _Settings, events: Connection, orders: Connection) -> None:
    """The door process: run the SMTP controller until told to stop."""
    keep_large_blocks_mapped()  # it holds each DATA buffer too: see gateway/allocator.py
    from gateway.intake.smtp import make_controller  # only the door process needs aiosmtpd's

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    logs = settings.config.logging
    setup_logging(
        settings.log_format,
        level=settings.log_level,
        max_repeats=logs.max_repeats,
        repeat_window_seconds=logs.repeat_window_seconds,
    )
    stop = threading.Event()
    app = App(settings.config)
    controller = make_controller(app, settings.host, settings.port, on_stored=events.send)
    try:
        controller.start()
    except Exception as exc:  # noqa: BLE001 - told to `serve`, which says it and exits
        events.send(f"{type(exc).__name__}: {exc}")
        return
    events.send(READY)
    threading.Thread(target=_await_stop, args=(orders, stop), daemon=True).start()
    stop.wait()
    controller.stop()
    app.engine.dispose()


def _await_stop(orders: Connection, stop: threading.Event) -> None:
    """Until `serve` says stop, or its end of the pipe closes (it died)."""
    try:
        orders.recv()
    except (EOFError, OSError):
        pass
    stop.set()
