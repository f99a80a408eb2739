"""Prometheus metrics: real messages through the worker, then a real scrape over HTTP.

The exporter listens on a free loopback port; its text is read with prometheus-client's
own parser, so the names, labels and values asserted are what Prometheus would store.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import INTAKE, TYPE1, TeamClient
from waiting import wait_until

from contract.errors import ConfigError
from gateway.app import App
from gateway.config import config_from_mapping
from gateway.metrics import Exporter, serve_metrics, start_exporter
from gateway.spool import accept
from gateway.worker import Worker
from store.db import transaction
from store.statistics import record_run

PLAIN = f"From: cert@alpha.example\r\nTo: {INTAKE}\r\nSubject: x\r\n\r\n{TYPE1}".encode()
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def scrape(app: App) -> Iterator[Callable[[], Samples]]:
    """Start the endpoint for `app` on a free port; scrape() -> {(name, labels): value}."""
    app.metrics.watch(app)
    exporter = start_exporter(app.metrics, "127.0.0.1:0")

    def read() -> Samples:
        host, port = exporter.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    yield read
    exporter.stop()


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_counters_by_state_and_reason_after_real_messages(
    app: App, team: TeamClient, worker: Worker, scrape: Callable[[], Samples]
) -> None:
    accepted = team.submit(TYPE1)
    for raw in (
        accepted,
        team.submit(TYPE1.replace("1204", "-1")),
        accepted,
        PLAIN,
        PLAIN + b"\r\n",
    ):
        accept(app.engine, raw, "smtp")
    assert worker.run_once() == {"accepted": 1, "rejected": 1, "duplicate": 1, "quarantined": 2}

    samples = scrape()

    processed = "clearinghouse_messages_processed_total"
    assert value(samples, processed, state="accepted", reason="none") == 1
    assert value(samples, processed, state="rejected", reason="invalid-report") == 1
    assert value(samples, processed, state="duplicate", reason="none") == 1
    assert value(samples, processed, state="quarantined", reason="not-encrypted") == 2
    assert value(samples, "clearinghouse_processing_seconds_count") == 5
    assert value(samples, "clearinghouse_processing_errors_total") == 0
    assert value(samples, "clearinghouse_messages", state="quarantined") == 2
    assert value(samples, "clearinghouse_spool_backlog") == 0
    # receipt, error reply, duplicate notice: sealed and queued, not yet delivered
    assert value(samples, "clearinghouse_outbox_backlog") == 3
    assert value(samples, "clearinghouse_outbox_oldest_age_seconds") >= 0
    assert value(samples, "clearinghouse_store_up") == 1

    worker.flush()
    accept(app.engine, PLAIN, "ingest")  # waits: nobody processes it
    samples = scrape()
    assert value(samples, "clearinghouse_outbox_backlog") == 0
    assert value(samples, "clearinghouse_outbox_oldest_age_seconds") == 0
    assert value(samples, "clearinghouse_spool_backlog") == 1
    assert value(samples, "clearinghouse_messages", state="received") == 1


def test_no_label_names_a_team_or_carries_content(
    app: App, team: TeamClient, worker: Worker, scrape: Callable[[], Samples]
) -> None:
    accept(app.engine, team.submit(TYPE1), "smtp")
    worker.run_once()
    labels = {v for (_, pairs) in scrape() for _, v in pairs}
    assert not {team.handle, team.email, team.fingerprint} & labels


def test_monthly_run_and_gateway_key_gauges(app: App, scrape: Callable[[], Samples]) -> None:
    assert value(scrape(), "clearinghouse_monthly_last_run_timestamp_seconds") == 0
    with transaction(app.engine) as s:
        run = record_run(s, period="2026-10", generation=0, sent=True, queued=3, digest="d")
    samples = scrape()
    assert value(samples, "clearinghouse_monthly_last_run_timestamp_seconds") == pytest.approx(
        run.ran_at.timestamp()
    )
    # The `app` fixture's key never expires.
    assert value(samples, "clearinghouse_gateway_key_expiry_timestamp_seconds") == 0


def test_a_broken_store_still_answers_the_scrape(
    tmp_path: Path, app_with: Callable[..., App]
) -> None:
    broken = app_with(core={"database_url": f"sqlite:///{tmp_path}/x/"})
    broken.metrics.watch(broken)
    exporter = start_exporter(broken.metrics, "127.0.0.1:0")
    try:
        host, port = exporter.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        exporter.stop()
    assert "clearinghouse_store_up 0.0" in text


def test_imap_poll_errors_are_counted(app_with: Callable[..., App], tmp_path: Path) -> None:
    from gateway.intake.imap_watch import run_poller

    password = tmp_path / "password"
    password.write_text("secret\n")
    port = _closed_port()
    imap = {"host": "127.0.0.1", "port": port, "security": "none", "username": "u",
            "password_file": password}  # fmt: skip
    door = app_with(imap=imap)
    stop = threading.Event()
    poller = threading.Thread(target=run_poller, args=(door, stop), daemon=True)
    poller.start()
    try:
        errors = "clearinghouse_imap_poll_errors_total"
        wait_until(
            lambda: (door.metrics.registry.get_sample_value(errors) or 0) >= 1,
            "an IMAP error to be counted",
            seconds=30,
        )
    finally:
        stop.set()
        poller.join(timeout=10)
    assert not poller.is_alive()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns: nobody listens


def test_serve_metrics_follows_the_configuration(app_with: Callable[..., App]) -> None:
    assert serve_metrics(app_with(metrics={"listen": ""})) is None
    exporter = serve_metrics(app_with(metrics={"listen": "127.0.0.1:0"}))
    assert isinstance(exporter, Exporter)
    try:
        assert exporter.address[0] == "127.0.0.1"
    finally:
        exporter.stop()


def test_a_taken_port_leaves_the_gateway_running(app: App, app_with: Callable[..., App]) -> None:
    first = start_exporter(app.metrics, "127.0.0.1:0")
    try:
        host, port = first.address
        taken = app_with(metrics={"listen": f"{host}:{port}"})
        assert serve_metrics(taken) is None  # logged; intake goes on without metrics
    finally:
        first.stop()


def test_the_endpoint_stays_on_loopback_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        config_from_mapping({"metrics": {"listen": "0.0.0.0:9464"}})
    allowed = {"listen": "0.0.0.0:9464", "allow_remote": True}
    assert config_from_mapping({"metrics": allowed}).metrics.listen == "0.0.0.0:9464"
    assert config_from_mapping({"metrics": {"listen": "[::1]:9464"}}).metrics.allow_remote is False
    assert config_from_mapping({"metrics": {"listen": ""}}).metrics.listen == ""
    with pytest.raises(ConfigError, match="HOST:PORT"):
        config_from_mapping({"metrics": {"listen": "9464"}})


def test_oldest_age_counts_from_the_oldest_pending_mail(
    app: App, team: TeamClient, worker: Worker, scrape: Callable[[], Samples]
) -> None:
    from sqlalchemy import update

    from store.models import OutboxEntry

    accept(app.engine, team.submit(TYPE1), "smtp")
    worker.run_once()
    with transaction(app.engine) as s:
        s.exec(update(OutboxEntry).values(created_at=datetime.now(UTC) - timedelta(hours=2)))
    age = value(scrape(), "clearinghouse_outbox_oldest_age_seconds")
    assert age >= timedelta(hours=2).total_seconds()
