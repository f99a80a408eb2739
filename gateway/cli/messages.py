"""Listing commands: messages (and reprocessing them), submissions, the outbox."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.progress import collect
from gateway.cli.views import emit, message_row, outbox_row, submission_row

if TYPE_CHECKING:
    from gateway.pipeline import Outcome


# --- listings ---------------------------------------------------------------------------


@click.group()
def messages() -> None:
    """Incoming messages and their states."""


@messages.command("list")
@click.option(
    "--state",
    default=None,
    type=click.Choice(["received", "accepted", "rejected", "duplicate", "quarantined"]),
)
@click.option("--limit", type=int, default=None)
@json_option
@pass_app
def messages_list(app: App, state: str | None, limit: int | None, as_json: bool) -> None:
    """List messages (oldest first)."""
    from store.db import open_session
    from store.spool import list_messages

    with open_session(app.engine) as s:
        rows = [message_row(s, m) for m in list_messages(s, state=state, limit=limit)]
    emit(rows, as_json, ["id", "state", "reason", "team", "channel", "received_at"])


@messages.command("show")
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="Print the raw message as received.")
@json_option
@pass_app
def messages_show(app: App, message_id: int, raw: bool, as_json: bool) -> None:
    """Show one message: state, reason explained, what was stored."""
    from store.db import open_session
    from store.spool import get_message

    with open_session(app.engine) as s:
        message = get_message(s, message_id)
        if message is None:
            raise ClearinghouseError(f"no message {message_id}; see `messages list`")
        if raw:
            sys.stdout.buffer.write(message.raw)
            return
        emit(message_row(s, message, detailed=True), as_json)


@messages.command("reprocess")
@click.argument("message_id", type=int, required=False)
@click.option("--quarantined", is_flag=True, help="Reprocess every quarantined message.")
@pass_app
def messages_reprocess(app: App, message_id: int | None, quarantined: bool) -> None:
    """Run a message (or all quarantined ones) through the pipeline again."""
    from gateway.service import reprocess

    if (message_id is None) == (not quarantined):
        raise click.UsageError("give a message ID or --quarantined (not both)")
    outcomes: Iterable[tuple[int, Outcome]] = reprocess(app, message_id)
    if quarantined:
        from store.db import open_session
        from store.spool import count_by_state

        with open_session(app.engine) as s:
            waiting = count_by_state(s).get("quarantined", 0)
        outcomes = collect(outcomes, waiting, f"reprocessing {waiting} quarantined")
    for mid, outcome in outcomes:
        click.echo(
            f"message {mid}: {outcome.state}{f' ({outcome.reason})' if outcome.reason else ''}"
        )


def _check_period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", value):
        raise click.BadParameter(f"expected a month as YYYY-MM, found {value!r}")
    return value


@click.group()
def submissions() -> None:
    """Stored reports."""


@submissions.command("list")
@click.option("--team", default=None)
@click.option("--period", default=None, metavar="YYYY-MM", callback=_check_period)
@click.option("--type", "type_", default=None, type=click.Choice(["type1", "type2"]))
@json_option
@pass_app
def submissions_list(
    app: App, team: str | None, period: str | None, type_: str | None, as_json: bool
) -> None:
    """List stored submissions, every revision."""
    from store.db import open_session
    from store.submissions import list_submissions

    with open_session(app.engine) as s:
        rows = [
            submission_row(r) for r in list_submissions(s, team=team, period=period, type=type_)
        ]
    emit(rows, as_json, ["id", "team", "type", "period", "revision", "message_id"])


@click.group()
def outbox() -> None:
    """Sealed replies waiting for delivery."""


@outbox.command("list")
@click.option("--state", default=None, type=click.Choice(["unsealed", "pending", "sent", "failed"]))
@json_option
@pass_app
def outbox_list(app: App, state: str | None, as_json: bool) -> None:
    """List outbox entries."""
    from store.db import open_session
    from store.outbox import list_outbox

    with open_session(app.engine) as s:
        rows = [outbox_row(e) for e in list_outbox(s, state=state)]
    emit(
        rows,
        as_json,
        ["id", "kind", "recipient", "state", "attempts", "next_attempt_at", "last_error"],
    )


@outbox.command("flush")
@pass_app
def outbox_flush(app: App) -> None:
    """Deliver every due entry now."""
    from gateway.service import worker_for

    result = worker_for(app).flush()
    click.echo(f"{result.sent} sent, {result.retrying} retrying, {result.failed} failed")
    if result.retrying or result.failed:
        sys.exit(1)
