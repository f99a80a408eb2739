"""The `clearinghouse` command line (SPEC.md "Command line"): parse, build an App, call.

Every command is a thin layer: it loads the configuration once, builds one `App`, calls
the module that does the work and prints the result, as text or with `--json`. Errors
from the project's exception tree print one line and exit with their exit code.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from gateway.app import App
from gateway.compose_cli import compose_command, template_command
from gateway.config import load_config
from gateway.errors import ClearinghouseError, StorageError
from gateway.logs import LogFormat, setup_logging
from gateway.progress import collect, steps
from gateway.views import emit, key_row, message_row, outbox_row, submission_row, team_row

if TYPE_CHECKING:
    from gateway.pipeline import Outcome

pass_app = click.make_pass_decorator(App)


class _Group(click.Group):
    """Turns the project's errors into one line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClearinghouseError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (OperationalError, ProgrammingError) as exc:  # no schema, no server: not a bug
            logging.getLogger(__name__).debug("database error", exc_info=True)
            click.echo(
                f"error: the database is not usable ({exc.orig or exc}); a new data "
                "directory needs `clearinghouse init` first",
                err=True,
            )
            ctx.exit(1)


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


@click.group(cls=_Group)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CLEARINGHOUSE_CONFIG",
    help="TOML configuration (default: built-in).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as key=value pairs or JSON (default: [logging] format).",
)
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, verbose: bool, log_format: LogFormat | None
) -> None:
    """Clearinghouse: secure email intake for CSIRT statistics."""
    setup_logging(log_format or "text", level=logging.DEBUG if verbose else logging.INFO)
    if ctx.invoked_subcommand in _WITHOUT_GATEWAY:
        return
    try:
        ctx.obj = App(load_config(config_path))
    except ClearinghouseError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(75 if ctx.invoked_subcommand == "ingest" else exc.exit_code)
    logs = ctx.obj.config.logging
    level = logging.DEBUG if verbose else logging.getLevelName(logs.level.upper())
    setup_logging(log_format or logs.format, level=level)
    ctx.call_on_close(lambda: _dispose(ctx.obj))


# Commands a team runs on its own machine: no gateway configuration or data directory.
_WITHOUT_GATEWAY = frozenset({"demo", "compose", "template"})


def _dispose(app: App) -> None:
    """Close the database connections the command opened (if it opened any)."""
    if "engine" in app.__dict__:  # a cached_property that was used
        app.engine.dispose()


@cli.command()
@click.option("--name", default=None, help="Name on the gateway key (default: config name).")
@click.option("--email", default=None, help="Address on the gateway key.")
@pass_app
def init(app: App, name: str | None, email: str | None) -> None:
    """Create the data dir, the schema and the gateway key; print its fingerprint."""
    from keys.identity import FPR_FILE, create_identity

    app.create_schema()
    core = app.config.clearinghouse
    new = not (app.gpg.home / FPR_FILE).exists()
    identity = create_identity(app.gpg, name or core.name, email or core.gateway_address)
    if new:
        uid = f"{name or core.name} <{email or core.gateway_address}>"
        app.registry.note_gateway_key("gateway-key init", identity.fingerprint, uid)
    click.echo(identity.fingerprint)


@cli.group("gateway-key", invoke_without_command=True)
@click.pass_context
def gateway_key(ctx: click.Context) -> None:
    """Print the gateway public key, ASCII-armored (teams encrypt to it)."""
    if ctx.invoked_subcommand is None:
        app: App = ctx.obj
        click.echo(app.gpg.export_public(app.identity.fingerprint), nl=False)


@gateway_key.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def gateway_key_import(app: App, file: Any, passphrase_file: Path | None) -> None:
    """Adopt an existing gateway secret key, so teams need not change anything."""
    from keys.identity import import_identity

    app.create_schema()
    passphrase = passphrase_file.read_text().rstrip("\n") if passphrase_file else None
    identity = import_identity(app.gpg, file.read(), passphrase)
    note = "with a passphrase" if passphrase else "without a passphrase"
    app.registry.note_gateway_key("gateway-key import", identity.fingerprint, note)
    click.echo(identity.fingerprint)


# --- teams, keys, coordinators -----------------------------------------------------------


@cli.group()
def teams() -> None:
    """The teams allowed to submit."""


@teams.command("add")
@click.argument("handle")
@click.option("--name", required=True)
@click.option("--email", required=True, help="Registered contact: the only reply address.")
@click.option(
    "--status",
    default="accredited",
    show_default=True,
    type=click.Choice(["listed", "accredited", "certified", "suspended"]),
)
@click.option("--country", default=None, help="ISO 3166 two-letter code.")
@pass_app
def teams_add(
    app: App, handle: str, name: str, email: str, status: str, country: str | None
) -> None:
    """Register a team."""
    team = app.registry.add_team(handle, name=name, email=email, status=status, country=country)
    click.echo(
        f"team {team.handle} added ({team.status}); next: "
        f"clearinghouse keys import {team.handle} KEYFILE"
    )


@teams.command("list")
@_json_option
@pass_app
def teams_list(app: App, as_json: bool) -> None:
    """List the teams."""
    from store.db import open_session
    from store.registry import list_teams

    with open_session(app.engine) as s:
        rows = [team_row(s, t) for t in list_teams(s)]
    emit(rows, as_json, ["handle", "status", "email", "country", "keys", "name"])


@teams.command("show")
@click.argument("handle")
@_json_option
@pass_app
def teams_show(app: App, handle: str, as_json: bool) -> None:
    """Show one team, its keys and its last submission."""
    from store.db import open_session

    with open_session(app.engine) as s:
        row = team_row(s, app.registry.team(s, handle), with_keys=True)
    emit(row, as_json)


@teams.command("set-status")
@click.argument("handle")
@click.argument("status", type=click.Choice(["listed", "accredited", "certified", "suspended"]))
@pass_app
def teams_set_status(app: App, handle: str, status: str) -> None:
    """Change a team's status (which statuses may submit is policy)."""
    team = app.registry.set_status(handle, status)
    allowed = status in app.config.policy.allowed_statuses
    click.echo(f"team {team.handle} is now {status} ({'may' if allowed else 'may not'} submit)")


@cli.group("keys")
def keys_group() -> None:
    """Team keys in the registry and the gateway keyring."""


@keys_group.command("import")
@click.argument("handle")
@click.argument("file", type=click.File("rb"))
@pass_app
def keys_import(app: App, handle: str, file: Any) -> None:
    """Bind the public key(s) in FILE to team HANDLE."""
    for key in app.registry.import_keys(handle, file.read()):
        verb = "refreshed" if key.updated else "bound"
        expiry = f"expires {key.expires_at:%Y-%m-%d}" if key.expires_at else "no expiry"
        click.echo(
            f"{verb} {key.fingerprint} to {handle} ({expiry}){' REVOKED' if key.revoked else ''}"
        )
        for uid in key.user_ids:
            click.echo(f"  {uid}")


@keys_group.command("list")
@_json_option
@pass_app
def keys_list(app: App, as_json: bool) -> None:
    """List bound keys."""
    from store.db import open_session
    from store.registry import list_keys

    with open_session(app.engine) as s:
        rows = [key_row(s, k) for k in list_keys(s)]
    emit(rows, as_json, ["fingerprint", "team", "expires_at", "revoked_at", "user_ids"])


@keys_group.command("revoke")
@click.argument("fingerprint")
@click.option("--reason", default=None)
@pass_app
def keys_revoke(app: App, fingerprint: str, reason: str | None) -> None:
    """Stop accepting signatures by a key."""
    key = app.registry.revoke_key(fingerprint, reason)
    click.echo(f"revoked {key.fingerprint}; its signatures are now refused (key-revoked)")


@cli.group()
def coordinators() -> None:
    """Coordinators receive monthly summaries."""


@coordinators.command("add")
@click.argument("email")
@click.option("--key", "key_file", type=click.File("rb"), required=True)
@click.option("--name", default=None)
@pass_app
def coordinators_add(app: App, email: str, key_file: Any, name: str | None) -> None:
    """Register a coordinator with their public key."""
    c = app.registry.add_coordinator(email, key_file.read(), name)
    click.echo(f"coordinator {c.email} added with key {c.fingerprint}")


@coordinators.command("list")
@_json_option
@pass_app
def coordinators_list(app: App, as_json: bool) -> None:
    """List coordinators."""
    from store.db import open_session
    from store.registry import list_coordinators

    with open_session(app.engine) as s:
        rows = [
            {"email": c.email, "name": c.name, "fingerprint": c.fingerprint}
            for c in list_coordinators(s)
        ]
    emit(rows, as_json, ["email", "name", "fingerprint"])


@coordinators.command("remove")
@click.argument("email")
@pass_app
def coordinators_remove(app: App, email: str) -> None:
    """Remove a coordinator."""
    app.registry.remove_coordinator(email)
    click.echo(f"coordinator {email} removed")


# --- doors and engine --------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.File("rb"), default="-")
@pass_app
def ingest(app: App, file: Any) -> None:
    """Spool one raw message (MTA pipe). Exit 0 once stored, 75 if it could not be."""
    from gateway.intake import accept

    try:
        raw = file.read()
        if not raw:
            raise StorageError("empty input: nothing to store")
        message_id, _ = accept(app.engine, raw, "ingest")
    except ClearinghouseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(StorageError.exit_code)
    except Exception as exc:  # the MTA must retry whatever went wrong
        click.echo(f"error: could not store the message ({type(exc).__name__})", err=True)
        sys.exit(StorageError.exit_code)
    click.echo(f"stored as message {message_id}")


@cli.command()
@click.option("--once", is_flag=True, help="Process what is spooled now, then exit.")
@pass_app
def process(app: App, once: bool) -> None:
    """Run the pipeline over spooled messages (and deliver the outbox)."""
    from gateway.service import run_worker_until_stopped, worker_for

    worker = worker_for(app)
    if once:
        counts = worker.run_once()
        sent = worker.flush()
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing"
        click.echo(
            f"processed: {summary}; outbox: {sent.sent} sent, {sent.retrying} retrying, "
            f"{sent.failed} failed"
        )
        return
    run_worker_until_stopped(worker)


@cli.command()
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
    from gateway.config import split_host_port
    from gateway.service import serve as run_service

    try:
        host, port = (
            split_host_port(listen) if listen else (app.config.smtp.host, app.config.smtp.port)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--smtp'") from None
    run_service(app, host, port)


@cli.command("poll-imap")
@click.option("--once", is_flag=True, help="Fetch what the mailbox holds now, then exit.")
@pass_app
def poll_imap(app: App, once: bool) -> None:
    """Fetch from the configured IMAP mailbox into the spool."""
    from gateway.imap import poll_once, poll_until_signalled

    app.create_schema()
    if once:
        click.echo(poll_once(app).summary())
        return
    poll_until_signalled(app)


# --- monthly statistics ------------------------------------------------------------------


@cli.group()
def report() -> None:
    """Monthly statistics: PDFs and CSV in [reports] output_dir, mailed encrypted."""


def _report_period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from reports.periods import parse_period

    if value is not None:
        try:
            parse_period(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@report.command("monthly")
@click.option(
    "--period",
    default=None,
    metavar="YYYY-MM",
    callback=_report_period,
    help="The month to report on (default: the previous month).",
)
@click.option("--no-send", is_flag=True, help="Write the files only; queue no mail.")
@click.option("--resend", is_flag=True, help="Mail everyone entitled again, even if mailed before.")
@pass_app
def report_monthly(app: App, period: str | None, no_send: bool, resend: bool) -> None:
    """Compute, write and mail one month's statistics. Reruns queue nothing new."""
    from reports.monthly import run_monthly
    from reports.periods import period_of, previous_period

    if no_send and resend:
        raise click.UsageError("--no-send and --resend exclude each other")
    today = app.clock().date()
    chosen = period or previous_period(today)
    if chosen >= period_of(today):
        raise click.BadParameter(f"{chosen} is not over yet", param_hint="'--period'")
    app.create_schema()  # adds tables a newer version needs (monthly runs); keeps the rest
    with steps(f"statistics for {chosen}", _monthly_steps(app), click.echo) as progress:
        result = run_monthly(app, chosen, send=not no_send, resend=resend, progress=progress)
    click.echo(f"statistics for {chosen} are in {result.directory}")
    if result.delivery is not None and result.delivery.skipped:
        raise ClearinghouseError(
            f"{len(result.delivery.skipped)} recipient(s) could not be mailed: "
            + "; ".join(result.delivery.skipped)
        )


@report.command("reminders")
@click.option(
    "--date",
    "on",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Act as if today were this day (default: today).",
)
@pass_app
def report_reminders(app: App, on: datetime | None) -> None:
    """Remind teams that have not submitted last month; warn about expiring keys.

    Run it daily (clearinghouse-reminders.timer): each reminder and warning goes once.
    """
    from reports.reminders import send_reminders

    result = send_reminders(app, on.date() if on else None)
    click.echo(
        f"{result.period}: {len(result.reminders)} reminder(s) "
        f"{', '.join(result.reminders)}; {len(result.warnings)} key warning(s)"
    )
    if result.unreachable:
        raise ClearinghouseError(
            "no usable key to encrypt to for: " + ", ".join(sorted(set(result.unreachable)))
        )


def _monthly_steps(app: App) -> int:
    """About how many progress lines a monthly run prints: files, then mails."""
    from store.db import open_session
    from store.registry import list_coordinators, list_teams

    with open_session(app.engine) as s:
        return 8 + 2 * len(list_teams(s)) + len(list_coordinators(s))


# --- operations -------------------------------------------------------------------------


@cli.command()
@_json_option
@pass_app
def health(app: App, as_json: bool) -> None:
    """Check the outbox, the spool and the gateway key; exit 1 if any check fails."""
    from gateway.health import run_checks

    checks = run_checks(app, app.clock())
    if as_json:
        emit([c.as_dict() for c in checks], True)
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<12} {c.detail}")
    if not all(c.ok for c in checks):
        sys.exit(1)


@cli.command()
@click.option("--subject", default=None, help="Only changes of this handle, key or address.")
@click.option("--limit", type=int, default=None, help="Only the newest N entries.")
@_json_option
@pass_app
def audit(app: App, subject: str | None, limit: int | None, as_json: bool) -> None:
    """Every change of the registry and the gateway key: when, who, what."""
    from gateway.views import audit_row
    from store.audit import list_entries
    from store.db import open_session

    with open_session(app.engine) as s:
        rows = [audit_row(e) for e in list_entries(s, subject=subject, limit=limit)]
    emit(rows, as_json, ["id", "at", "actor", "action", "subject", "details"])


# Team side: no gateway configuration needed (see _WITHOUT_GATEWAY).
cli.add_command(compose_command)
cli.add_command(template_command)


# --- database schema ---------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """The database schema and its migrations (`init` and `serve` upgrade it too)."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Bring the schema to this version's newest revision, keeping every row."""
    from store import migrate

    before = migrate.current(app.engine)
    app.create_schema()
    after = migrate.current(app.engine)
    if before == after:
        click.echo(f"the database is at revision {after}, the newest; nothing to do")
    else:
        click.echo(f"the database was upgraded from {before or 'no revision'} to {after}")


@db_group.command("current")
@pass_app
def db_current(app: App) -> None:
    """Print the database's schema revision; exit 1 if it needs `db upgrade`."""
    from store import migrate

    at, newest = migrate.current(app.engine), migrate.head()
    if at != newest:
        raise ClearinghouseError(
            f"the database is at revision {at or 'none'}, this version needs {newest}: "
            "run `clearinghouse db upgrade`"
        )
    click.echo(f"{at} (the newest revision)")


# --- listings ---------------------------------------------------------------------------


@cli.group()
def messages() -> None:
    """Incoming messages and their states."""


@messages.command("list")
@click.option(
    "--state",
    default=None,
    type=click.Choice(["received", "accepted", "rejected", "duplicate", "quarantined"]),
)
@click.option("--limit", type=int, default=None)
@_json_option
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
@_json_option
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


@cli.group()
def submissions() -> None:
    """Stored reports."""


@submissions.command("list")
@click.option("--team", default=None)
@click.option("--period", default=None, metavar="YYYY-MM", callback=_check_period)
@click.option("--type", "type_", default=None, type=click.Choice(["type1", "type2"]))
@_json_option
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


@cli.group()
def outbox() -> None:
    """Sealed replies waiting for delivery."""


@outbox.command("list")
@click.option("--state", default=None, type=click.Choice(["pending", "sent", "failed"]))
@_json_option
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


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the temporary directory afterwards.")
def demo(keep: bool) -> None:
    """A complete run in a temporary directory: gateway, three teams, SMTP, receipts."""
    from gateway.demo import run_demo

    run_demo(echo=click.echo, keep=keep)


def main() -> None:
    cli(prog_name="clearinghouse")


if __name__ == "__main__":
    main()
