"""The `clearinghouse` command line (SPEC.md "Command line"): parse, build an App, call.

Every command is a thin layer: it loads the configuration once, builds one `App`, calls
the module that does the work and prints the result, as text or with `--json`. Errors
from the project's exception tree print one line and exit with their exit code.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from contract.errors import ClearinghouseError, StorageError
from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.compose import compose_command, template_command
from gateway.cli.messages import messages, outbox, submissions
from gateway.cli.report import report
from gateway.cli.teams import audit, coordinators, keys_group, teams
from gateway.cli.views import emit
from gateway.config import load_config
from gateway.logs import LogFormat, setup_logging

if TYPE_CHECKING:
    pass


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


# --- doors and engine --------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.File("rb"), default="-")
@pass_app
def ingest(app: App, file: Any) -> None:
    """Spool one raw message (MTA pipe). Exit 0 once stored, 75 if it could not be."""
    from gateway.spool import accept

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
    from gateway.intake.imap import poll_once, poll_until_signalled

    app.create_schema()
    if once:
        click.echo(poll_once(app).summary())
        return
    poll_until_signalled(app)


# --- operations -------------------------------------------------------------------------


@cli.command()
@json_option
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


# Team side: no gateway configuration needed (see _WITHOUT_GATEWAY).
cli.add_command(compose_command)
cli.add_command(template_command)

for group in (teams, keys_group, coordinators, audit, messages, submissions, outbox, report):
    cli.add_command(group)


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


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the temporary directory afterwards.")
def demo(keep: bool) -> None:
    """A complete run in a temporary directory: gateway, three teams, SMTP, receipts."""
    from gateway.cli.demo import run_demo

    run_demo(echo=click.echo, keep=keep)


def main() -> None:
    cli(prog_name="clearinghouse")


