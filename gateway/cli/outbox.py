"""`outbox list` and `outbox flush`: sealed replies waiting for delivery."""

from __future__ import annotations

import sys

import click

from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.views import emit, outbox_row, say
from gateway.service import worker_for
from store.db import open_session
from store.monitoring import list_outbox


@click.group()
def outbox() -> None:
    """Sealed replies waiting for delivery."""


@outbox.command("list")
@click.option("--state", default=None, type=click.Choice(["unsealed", "pending", "sent", "failed"]))
@json_option
@pass_app
def outbox_list(app: App, state: str | None, as_json: bool) -> None:
    """List outbox entries."""
    with open_session(app.engine) as s:
        rows = [outbox_row(e) for e in list_outbox(s, state=state, with_raw=False)]
    emit(
        rows,
        as_json,
        ["id", "kind", "recipient", "state", "attempts", "next_attempt_at", "last_error"],
    )


@outbox.command("flush")
@pass_app
def outbox_flush(app: App) -> None:
    """Deliver every due entry now."""
    result = worker_for(app).flush()
    say(f"{result.sent} sent, {result.retrying} retrying, {result.failed} failed")
    if result.retrying or result.failed:
        sys.exit(1)
