"""Setting a gateway up: `init`, `gateway-key` (print, import) and `db` (upgrade, current)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.cli.common import pass_app
from keys.identity import FPR_FILE, create_identity, import_identity
from store import migrate
from store.readiness import Schema


@click.command()
@click.option("--name", default=None, help="Name on the gateway key (default: config name).")
@click.option("--email", default=None, help="Address on the gateway key.")
@pass_app
def init(app: App, name: str | None, email: str | None) -> None:
    """Create the data dir, the schema and the gateway key; print its fingerprint."""
    app.initialise()
    core = app.config.clearinghouse
    new = not (app.gpg.home / FPR_FILE).exists()
    identity = create_identity(app.gpg, name or core.name, email or core.gateway_address)
    if new:
        uid = f"{name or core.name} <{email or core.gateway_address}>"
        app.registry.note_gateway_key("gateway-key init", identity.fingerprint, uid)
    click.echo(identity.fingerprint)


@click.group("gateway-key", invoke_without_command=True)
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
    app.initialise()
    passphrase = passphrase_file.read_text().rstrip("\n") if passphrase_file else None
    identity = import_identity(app.gpg, file.read(), passphrase)
    note = "with a passphrase" if passphrase else "without a passphrase"
    app.registry.note_gateway_key("gateway-key import", identity.fingerprint, note)
    click.echo(identity.fingerprint)


@click.group("db")
def db_group() -> None:
    """The database schema and its migrations (`init` and `serve` upgrade it too)."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Bring the schema to this version's newest revision, keeping every row."""
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
    state = app.readiness()  # looks without creating anything
    if state.schema is Schema.NEWER:
        raise ClearinghouseError(
            f"the database is at revision {state.revision}, newer than this version of "
            f"clearinghouse knows ({state.newest}): run the version that upgraded it"
        )
    if state.schema is not Schema.READY:
        raise ClearinghouseError(
            f"the database is at revision {state.revision or 'none'}, this version needs "
            f"{state.newest}: run `clearinghouse db upgrade` (a new gateway: `clearinghouse "
            "init`)"
        )
    click.echo(f"{state.revision} (the newest revision)")
