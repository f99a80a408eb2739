"""Running the gateway: `serve`, `process`, `poll-imap`, `ingest` (MTA pipe) and `health`."""

from __future__ import annotations

import sys
from typing import Any

import click

from contract.errors import ClearinghouseError, StorageError
from gateway.addresses import split_host_port
from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.views import emit, say
from gateway.health import run_checks
from gateway.intake.imap import poll_once
from gateway.intake.imap_watch import poll_until_signalled
from gateway.service import run_worker_until_stopped, worker_for
from gateway.service import serve as run_service
from gateway.spool import accept


@click.command()
@click.argument("file", type=click.File("rb"), default="-")
@pass_app
def ingest(app: App, file: Any) -> None:
    """Spool one raw message (MTA pipe). Exit 0 once stored, 75 if it could not be."""
    try:
        raw = file.read()
        if not raw:
            raise StorageError("empty input: nothing to store")
        message_id, _ = accept(app.engine, raw, "ingest", headers=app.header_limits)
    except ClearinghouseError as exc:
        say(f"error: {exc}", err=True)
        sys.exit(StorageError.exit_code)
    except Exception as exc:  # the MTA must retry whatever went wrong
        say(f"error: could not store the message ({type(exc).__name__}: {exc})", err=True)
        sys.exit(StorageError.exit_code)
    say(f"stored as message {message_id}")


@click.command()
@click.option("--once", is_flag=True, help="Process what is spooled now, then exit.")
@pass_app
def process(app: App, once: bool) -> None:
    """Run the pipeline over spooled messages (and deliver the outbox)."""
    worker = worker_for(app)
    if once:
        counts = worker.run_once()
        sent = worker.flush()
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing"
        say(
            f"processed: {summary}; outbox: {sent.sent} sent, {sent.retrying} retrying, "
            f"{sent.failed} failed"
        )
        return
    run_worker_until_stopped(worker)


@click.command()
@click.option(
    "--smtp",
    "listen",
    default=None,
    metavar="HOST:PORT",
    help="Listen address (default: [smtp] listen).",
)
@pass_app
def serve(app: App, listen: str | None) -> None:
    """SMTP listener + worker + outbox (+ IMAP poller when [imap] host is set)."""
    try:
        host, port = (
            split_host_port(listen) if listen else (app.config.smtp.host, app.config.smtp.port)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--smtp'") from None
    run_service(app, host, port)


@click.command("poll-imap")
@click.option("--once", is_flag=True, help="Fetch what the mailbox holds now, then exit.")
@pass_app
def poll_imap(app: App, once: bool) -> None:
    """Fetch from the configured IMAP mailbox into the spool."""
    app.create_schema()
    if once:
        say(poll_once(app).summary())
        return
    poll_until_signalled(app)


@click.command()
@json_option
@pass_app
def health(app: App, as_json: bool) -> None:
    """Check the outbox, the spool and the gateway key; exit 1 if any check fails."""
    checks = run_checks(app, app.clock())
    if as_json:
        emit([c.as_dict() for c in checks], True)
    else:
        for c in checks:
            say(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<12} {c.detail}")
    if not all(c.ok for c in checks):
        sys.exit(1)
