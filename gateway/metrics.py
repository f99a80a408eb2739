"""Prometheus metrics (prometheus-client): what the gateway did, and what is waiting.

In: events from the pipeline (one outcome per message), the worker (how long each took)
and the IMAP poller (its errors); at scrape time, the store and the keyring. Out: one
`CollectorRegistry` per `App` (no process-wide state, so tests and several apps in one
process never mix), served over HTTP by `serve` on `[metrics] listen`.

Counters count what this process did since it started, as Prometheus expects
(`rate()` copes with restarts). Gauges are read from the database at each scrape, so
they are right whichever process (serve, `report monthly`, another gateway instance on
the same PostgreSQL) changed it:

    clearinghouse_messages_processed_total{state,reason}   reason "none" when there is none
    clearinghouse_processing_seconds                       histogram, one message each
    clearinghouse_processing_errors_total                  the pipeline raised (a bug, or
                                                           the database or gpg is gone)
    clearinghouse_imap_poll_errors_total                   failed IMAP connects or sessions
    clearinghouse_messages{state}                          messages in the store, by state
    clearinghouse_spool_backlog                            messages waiting to be processed
    clearinghouse_outbox_backlog                           mails waiting for delivery
    clearinghouse_outbox_oldest_age_seconds                how long the oldest has waited
    clearinghouse_outbox_failed                            mails given up on
    clearinghouse_monthly_last_run_timestamp_seconds       last completed `report monthly`
    clearinghouse_gateway_key_expiry_timestamp_seconds     0 when the key never expires
    clearinghouse_store_up                                 0 when the store cannot be read

No label carries a team, an address or anything from a message: only states and the
stable reason codes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contract.codes import Reason, State
from contract.errors import ClearinghouseError
from gateway.addresses import split_host_port
from keys.keycheck import assess
from store.db import open_session
from store.monitoring import backlog, last_monthly_run, outbox_by_state
from store.spool import count_by_state

if TYPE_CHECKING:
    from gateway.app import App

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """The registry and the instruments the gateway's code feeds."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._watching = False
        self.messages = Counter(
            "clearinghouse_messages_processed",
            "Messages that reached a final state, by state and reason code.",
            ["state", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "clearinghouse_processing_seconds",
            "Time to process one message through the pipeline.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.processing_errors = Counter(
            "clearinghouse_processing_errors",
            "Messages whose processing raised an error (retried, then quarantined).",
            registry=self.registry,
        )
        self.imap_poll_errors = Counter(
            "clearinghouse_imap_poll_errors",
            "IMAP connections or sessions that failed (the poller reconnects).",
            registry=self.registry,
        )

    def outcome(self, state: State, reason: Reason | None) -> None:
        self.messages.labels(state=state, reason=reason or "none").inc()

    def watch(self, app: App) -> None:
        """Add the gauges read from `app`'s store and keyring at every scrape (once)."""
        if not self._watching:
            self.registry.register(StoreCollector(app))
            self._watching = True


class StoreCollector(Collector):
    """Gauges read from the store at scrape time; a broken store gives store_up 0."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is read when registering; names are checked at collect time

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        try:
            families = list(self._store(now))
        except Exception:  # a scrape must answer even when the database does not
            log.warning("metrics: cannot read the store", exc_info=True)
            families = []
        yield _gauge(
            "clearinghouse_store_up", "1 if the store could be read.", 1 if families else 0
        )
        yield from families
        expiry = self._key_expiry()
        if expiry is not None:
            yield _gauge(
                "clearinghouse_gateway_key_expiry_timestamp_seconds",
                "When the gateway key stops being usable (0: never).",
                expiry,
            )

    def _store(self, now: datetime) -> Iterator[Metric]:
        with open_session(self.app.engine) as s:
            states = count_by_state(s)
            pending, oldest = backlog(s)
            outbox_states = outbox_by_state(s)
            monthly = last_monthly_run(s)
        by_state = GaugeMetricFamily(
            "clearinghouse_messages", "Messages in the store, by state.", labels=["state"]
        )
        for state in State:
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        yield _gauge(
            "clearinghouse_spool_backlog",
            "Messages waiting to be processed.",
            states.get(State.RECEIVED, 0),
        )
        yield _gauge("clearinghouse_outbox_backlog", "Mails waiting for delivery.", pending)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield _gauge(
            "clearinghouse_outbox_oldest_age_seconds",
            "How long the oldest mail waiting for delivery has waited (0: none waits).",
            max(age, 0.0),
        )
        yield _gauge(
            "clearinghouse_outbox_failed",
            "Mails the outbox gave up on.",
            outbox_states.get("failed", 0),
        )
        yield _gauge(
            "clearinghouse_monthly_last_run_timestamp_seconds",
            "When `report monthly` last completed (0: never).",
            monthly.timestamp() if monthly is not None else 0,
        )

    def _key_expiry(self) -> float | None:
        try:
            key = self.app.gpg.details(self.app.identity.fingerprint)
        except Exception:
            log.warning("metrics: cannot read the gateway key", exc_info=True)
            return None
        if key is None:
            return None
        ends = assess(key, datetime.now(UTC)).until
        return ends.timestamp() if ends is not None else 0.0


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


@dataclass
class Exporter:
    """The HTTP endpoint serving one registry; `stop()` closes its socket."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(app: App) -> Exporter | None:
    """The endpoint `[metrics] listen` asks for, with the store's gauges; None if off.

    An endpoint that cannot be opened (the port is taken) is logged as an error and
    the gateway runs on without it: intake matters more than watching it, and the
    missing scrape target is what Prometheus alerts on.
    """
    listen = app.config.metrics.listen
    if not listen:
        return None
    app.metrics.watch(app)
    try:
        return start_exporter(app.metrics, listen)
    except ClearinghouseError as exc:
        log.error("metrics endpoint not started: %s", exc)
        return None


def start_exporter(metrics: Metrics, listen: str) -> Exporter:
    """Serve `metrics` on HOST:PORT (port 0: any free port) in a daemon thread."""
    host, port = split_host_port(listen)
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ClearinghouseError(
            f'[metrics] listen {listen}: {exc.strerror or exc}; change it, or set it to "" '
            "to turn the metrics endpoint off"
        ) from None
    exporter = Exporter(server, thread)
    log.info("metrics on http://%s:%s/metrics", *exporter.address)
    return exporter
