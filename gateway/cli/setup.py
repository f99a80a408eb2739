"""Setting a gateway up: `init`, `gateway-key` (print, import) and `db` (upgrade, current)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.cli.common import pass_app
from gateway.cli.views import say
from keys.identity import FPR_FILE, create_identity, import_identity, load_identity
from store import migrate
from store.readiness import Schema


@click.command()
@click.option("--name", default=None, help="Name on the gateway key (default: config name).")
@click.option("--email", default=None, help="Address on the gateway key.")
@pass_app
def init(app: App, name: str | None, email: str | None) -> None:
    """Create the data dir, the schema and the gateway key; print its fingerprint.

    Run again, it changes nothing and says so: an existing gateway key is never
    replaced, and --name/--email do not change it.
    """
    fresh_database = app.readiness().schema is Schema.MISSING
    app.initialise()
    core = app.config.clearinghouse
    uid = f"{name or core.name} <{email or core.gateway_address}>"
    if not (app.gpg.home / FPR_FILE).exists():
        identity = create_identity(app.gpg, name or core.name, email or core.gateway_address)
        app.registry.note_gateway_key("gateway-key init", identity.fingerprint, uid)
        say(identity.fingerprint)
        return
    identity = load_identity(app.gpg)
    key = app.gpg.details(identity.fingerprint)
    has = "; ".join(key.user_ids) if key else "?"
    if fresh_database:
        say(
            f"reusing the gateway key already in {app.gpg.home}: {identity.fingerprint} "
            f"({has}); to start with a new key, move that directory away first",
            err=True,
        )
        note = f"reused the key already in the GnuPG home ({has})"
        app.registry.note_gateway_key("gateway-key init", identity.fingerprint, note)
    else:
        say(f"already initialised; the gateway key is {identity.fingerprint}", err=True)
    if (name or email) and uid not in (key.user_ids if key else ()):
        say(
            f"the gateway key exists and is not changed: its user ID stays {has!r}; "
            f"to add {uid!r}, run `gpg --homedir {app.gpg.home} --quick-add-uid "
            f"{identity.fingerprint} '{uid}'`",
            err=True,
        )
    say(identity.fingerprint)


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
@click.option(
    "--any-address",
    is_flag=True,
    help="Adopt the key though none of its user IDs is for gateway_address.",
)
@pass_app
def gateway_key_import(
    app: App, file: Any, passphrase_file: Path | None, any_address: bool
) -> None:
    """Adopt an existing gateway secret key, so teams need not change anything.

    The key must have a user ID for `gateway_address` (mail clients look it up by that
    address), unless --any-address.
    """
    app.initialise()
    passphrase = passphrase_file.read_text().rstrip("\n") if passphrase_file else None
    address = None if any_address else app.config.clearinghouse.gateway_address
    identity = import_identity(app.gpg, file.read(), passphrase, address=address)
    note = "with a passphrase" if passphrase else "without a passphrase"
    app.registry.note_gateway_key("gateway-key import", identity.fingerprint, note)
    say(identity.fingerprint)


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
        say(f"the database is at revision {after}, the newest; nothing to do")
    else:
        say(f"the database was upgraded from {before or 'no revision'} to {after}")


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
    say(f"{state.revision} (the newest revision)")
