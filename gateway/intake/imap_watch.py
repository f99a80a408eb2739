"""Keeping the IMAP folder drained: IDLE where the server offers it, polling otherwise.

`run_poller` (a thread of `serve`, or `poll-imap` without --once) connects, drains the
folder once (`imap.drain`), then waits in IDLE, leaving it at least every `poll_seconds`
to drain anyway, and polls where the server has no IDLE. A dropped connection or a
server restart is retried with backoff (tenacity); the door stays up.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from tenacity import RetryCallState, Retrying, stop_when_event_set, wait_exponential, wait_random

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.intake import imap, imap_connection

log = logging.getLogger(__name__)

IDLE_SLICE = 0.5  # seconds; how quickly an idling poller notices `stop`


IDLE_RENEW = 25 * 60  # RFC 2177: re-issue IDLE before a server's 30-minute timeout


MAX_BACKOFF = 60.0  # seconds between reconnection attempts, at most


class _Stopped(Exception):
    """`stop` was set before a connection attempt."""


def start_poller(
    app: App, stop: threading.Event, wake: Callable[[], None] | None = None
) -> threading.Thread:
    """`run_poller` in a daemon thread (for `serve`)."""
    thread = threading.Thread(
        target=run_poller, args=(app, stop, wake), name="imap-poller", daemon=True
    )
    thread.start()
    return thread


def poll_until_signalled(app: App) -> None:
    """`poll-imap` without --once: run the poller here until SIGTERM or SIGINT."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping the IMAP poller", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    run_poller(app, stop)


def run_poller(app: App, stop: threading.Event, wake: Callable[[], None] | None = None) -> None:
    """Keep the folder drained until `stop` is set; `wake` is called per stored message.

    Connecting and the first drain are retried with backoff until they succeed; a session
    that then breaks ends here, and the next one starts with a short backoff again.
    """
    while not stop.is_set():
        session = _open_session(app, stop, wake)
        if session is None:
            return
        client, uidnext = session
        try:
            _watch(app, client, uidnext, stop, wake)
        except Exception as exc:  # the door stays up: reconnect, drain again
            _log_failure(exc, "reconnecting", logging.WARNING)
            app.metrics.imap_poll_errors.inc()
            stop.wait(1.0)
        finally:
            imap_connection.close(client)


def _open_session(
    app: App, stop: threading.Event, wake: Callable[[], None] | None
) -> tuple[IMAPClient, int | None] | None:
    """A connected client whose folder has just been drained, and the folder's UIDNEXT
    when that drain looked; None once `stop` is set."""

    def pause(seconds: float) -> None:
        stop.wait(seconds)  # returns at once when stopping

    retrying = Retrying(
        stop=stop_when_event_set(stop),
        wait=wait_exponential(multiplier=1, max=MAX_BACKOFF) + wait_random(0, 1),
        sleep=pause,
        before_sleep=lambda state: _log_retry(state, app),
        retry_error_callback=lambda _state: None,
    )
    session: tuple[IMAPClient, int | None] | None = retrying(_connect_and_drain, app, stop, wake)
    return session


def _connect_and_drain(
    app: App, stop: threading.Event, wake: Callable[[], None] | None
) -> tuple[IMAPClient, int | None]:
    if stop.is_set():
        raise _Stopped
    client = imap_connection.connect(app.config.imap)
    try:
        imap.ensure_folders(client, app.config.imap)
        uidnext = imap.drain(app, client, wake).uidnext
    except BaseException:
        imap_connection.close(client)
        raise
    return client, uidnext


def _log_retry(state: RetryCallState, app: App) -> None:
    app.metrics.imap_poll_errors.inc()
    exc = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    _log_failure(exc, f"retrying in {delay:.0f} s")


def _log_failure(exc: BaseException | None, then: str, level: int = logging.ERROR) -> None:
    """One line for a broken server, login or store; a traceback only for a bug."""
    if isinstance(exc, ClearinghouseError | OSError | IMAPClientError):
        log.log(
            level,
            "IMAP: %s (%s); %s",
            imap_connection.describe_error(exc),
            type(exc).__name__,
            then,
        )
    else:
        log.error("IMAP: unexpected failure; %s", then, exc_info=exc)


def _watch(
    app: App,
    client: IMAPClient,
    uidnext: int | None,
    stop: threading.Event,
    wake: Callable[[], None] | None,
) -> None:
    """Wait for news (IDLE, or the poll interval) and drain, until `stop` is set.

    `uidnext` is the folder's UIDNEXT when the drain before this looked."""
    cfg = app.config.imap
    use_idle = cfg.idle and client.has_capability("IDLE")
    log.info(
        "IMAP: watching %r on %s:%s (%s)",
        cfg.folder,
        cfg.host,
        cfg.port,
        "IDLE" if use_idle else f"polling every {cfg.poll_seconds} s",
    )
    while not stop.is_set():
        if use_idle:
            _idle(client, cfg.folder, uidnext, stop, min(cfg.poll_seconds, IDLE_RENEW))
        else:
            stop.wait(cfg.poll_seconds)
        if not stop.is_set():
            uidnext = imap.drain(app, client, wake).uidnext


def _idle(
    client: IMAPClient, folder: str, uidnext: int | None, stop: threading.Event, seconds: float
) -> None:
    """Sit in IDLE until the server reports anything, `seconds` pass or `stop` is set.

    Mail delivered while the last drain ran is announced (EXISTS) once, in the reply to
    whichever command came next, often the drain's own FETCH or MOVE, where it goes
    unread; IDLE does not announce it again. Nor does Dovecot 2.3 report, while idling,
    mail delivered just before IDLE began (it came only with DONE). So the folder is
    selected again first, and a UIDNEXT other than the drain's (`uidnext`) means mail
    came in: this wait ends before it begins. Only mail delivered in the instant between
    that SELECT and IDLE waits for the next renewal of IDLE (`seconds`).
    """
    if imap.folder_uidnext(client, folder) != uidnext:
        return
    client.idle()
    responses = _idle_wait(client, stop, time.monotonic() + seconds)
    for response in responses:
        if response[:1] == (b"BYE",):  # e.g. (b"BYE", b"Server", b"shutting", b"down.")
            words = (
                w.decode(errors="replace") if isinstance(w, bytes) else str(w) for w in response
            )
            raise IMAPClientAbortError(" ".join(words))
    client.idle_done()  # raises if the connection died silently: the caller reconnects


def _idle_wait(client: IMAPClient, stop: threading.Event, deadline: float) -> list[Any]:
    while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
        wait = min(IDLE_SLICE, remaining)
        started = time.monotonic()
        responses: list[Any] = client.idle_check(timeout=wait)
        # An empty early return is how imapclient reports a closed socket (it swallows
        # the EOF): leave IDLE, and DONE will find out whether the connection is alive.
        if responses or time.monotonic() - started < wait / 2:
            return responses
    return []
