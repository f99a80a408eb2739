"""`messages list`, `show`, `reprocess`, `resend-reply` and `purge`: incoming messages."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import click

from contract.codes import State
from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.progress import collect
from gateway.cli.views import emit, message_row, say
from gateway.jobs.resend import resend_reply
from gateway.jobs.retention import Purge, past_retention, purge_raw
from gateway.pipeline import Outcome
from gateway.printable import printable
from gateway.service import reprocess
from store.db import open_session
from store.registry import team_handles
from store.spool import count_in_state, get_message, list_messages


@click.group()
def messages() -> None:
    """Incoming messages and their states."""


@messages.command("list")
@click.option(
    "--state",
    default=None,
    type=click.Choice([state.value for state in State]),
)
@click.option("--limit", type=int, default=None)
@json_option
@pass_app
def messages_list(app: App, state: str | None, limit: int | None, as_json: bool) -> None:
    """List messages (oldest first)."""
    chosen = State(state) if state else None
    with open_session(app.engine) as s:
        handles = team_handles(s)
        found = list_messages(s, state=chosen, limit=limit)
        rows = [message_row(s, m, handles=handles) for m in found]
    emit(rows, as_json, ["id", "state", "reason", "team", "channel", "received_at"])


@messages.command("show")
@click.argument("message_id", type=int)
@click.option(
    "--raw",
    is_flag=True,
    help="Print the raw message as received (to a terminal: control characters escaped).",
)
@json_option
@pass_app
def messages_show(app: App, message_id: int, raw: bool, as_json: bool) -> None:
    """Show one message: state, reason explained, what was stored."""
    with open_session(app.engine) as s:
        message = get_message(s, message_id)
        if message is None:
            raise ClearinghouseError(f"no message {message_id}; see `messages list`")
        if raw:
            if message.purged_at is not None:
                raise ClearinghouseError(
                    f"message {message_id}: its raw bytes were purged on "
                    f"{message.purged_at:%Y-%m-%d} ([retention]); its record remains"
                )
            _print_raw(message.raw)
            return
        emit(message_row(s, message, detailed=True), as_json)


@messages.command("reprocess")
@click.argument("message_id", type=int, required=False)
@click.option("--quarantined", is_flag=True, help="Reprocess every quarantined message.")
@pass_app
def messages_reprocess(app: App, message_id: int | None, quarantined: bool) -> None:
    """Run a message (or all quarantined ones) through the pipeline again."""
    if (message_id is None) == (not quarantined):
        raise click.UsageError("give a message ID or --quarantined (not both)")
    outcomes: Iterable[tuple[int, Outcome]] = reprocess(app, message_id)
    if quarantined:
        with open_session(app.engine) as s:
            waiting = count_in_state(s, State.QUARANTINED)
        outcomes = collect(outcomes, waiting, f"reprocessing {waiting} quarantined")
    for mid, outcome in outcomes:
        say(f"message {mid}: {outcome.state}{f' ({outcome.reason})' if outcome.reason else ''}")


@messages.command("purge")
@click.option("--dry-run", is_flag=True, help="Only list what is past [retention].")
@json_option
@pass_app
def messages_purge(app: App, dry_run: bool, as_json: bool) -> None:
    """Delete the raw bytes of messages past [retention]; their records stay."""
    due = past_retention(app)
    result = Purge(due, 0)
    if not dry_run and due:
        with click.progressbar(length=len(due), label="purging", file=sys.stderr) as bar:
            result = purge_raw(app, due, progress=bar.update)
    if as_json:
        rows = [
            {"id": d.id, "state": d.state, "size": d.size, "received_at": d.received_at}
            for d in result.due
        ]
        emit({"dry_run": dry_run, "purged": result.purged, "messages": rows}, True)
        return
    verb = "would purge" if dry_run else "purged"
    count = len(result.due) if dry_run else result.purged
    say(f"{verb} the raw bytes of {count} message(s), {result.bytes} bytes")


def _print_raw(raw: bytes) -> None:
    """The bytes as received when saved to a file or piped; on a terminal, readable text
    whose control characters are escaped (the message is the sender's to choose)."""
    if not sys.stdout.isatty():
        sys.stdout.buffer.write(raw)
        return
    text = raw.decode("utf-8", "backslashreplace").replace("\r\n", "\n")
    say(printable(text, keep="\n\t"))


@messages.command("resend-reply")
@click.argument("message_id", type=int)
@pass_app
def messages_resend_reply(app: App, message_id: int) -> None:
    """Queue the reply of a processed message again, sealed to the team's current key."""
    resent = resend_reply(app, message_id)
    say(
        f"{resent.kind} of message {message_id} queued to {resent.recipient} "
        f"(outbox {resent.entry_id}), encrypted to key {resent.key_fingerprint}"
    )
