"""Registry commands: teams, their keys, coordinators, and the audit log of changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gateway.app import App
from gateway.cli_common import json_option, pass_app
from gateway.cli_directory import teams_set_ti, teams_sync
from gateway.views import emit, key_row, team_row

if TYPE_CHECKING:
    pass


# --- teams, keys, coordinators -----------------------------------------------------------


@click.group()
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
@click.option("--ti", "ti_name", default=None, help="Its short name in the TI directory.")
@pass_app
def teams_add(
    app: App,
    handle: str,
    name: str,
    email: str,
    status: str,
    country: str | None,
    ti_name: str | None,
) -> None:
    """Register a team."""
    team = app.registry.add_team(
        handle, name=name, email=email, status=status, country=country, ti_name=ti_name
    )
    linked = f", linked to TI entry {team.ti_name!r}" if team.ti_name else ""
    click.echo(
        f"team {team.handle} added ({team.status}{linked}); next: "
        f"clearinghouse keys import {team.handle} KEYFILE"
    )


@teams.command("list")
@json_option
@pass_app
def teams_list(app: App, as_json: bool) -> None:
    """List the teams."""
    from store.db import open_session
    from store.registry import list_teams

    with open_session(app.engine) as s:
        rows = [team_row(s, t) for t in list_teams(s)]
    emit(rows, as_json, ["handle", "status", "email", "country", "keys", "ti", "name"])


@teams.command("show")
@click.argument("handle")
@json_option
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


teams.add_command(teams_sync)
teams.add_command(teams_set_ti)


@click.group("keys")
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
@json_option
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


@click.group()
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
@json_option
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


@click.command()
@click.option("--subject", default=None, help="Only changes of this handle, key or address.")
@click.option("--limit", type=int, default=None, help="Only the newest N entries.")
@json_option
@pass_app
def audit(app: App, subject: str | None, limit: int | None, as_json: bool) -> None:
    """Every change of the registry and the gateway key: when, who, what."""
    from gateway.views import audit_row
    from store.audit import list_entries
    from store.db import open_session

    with open_session(app.engine) as s:
        rows = [audit_row(e) for e in list_entries(s, subject=subject, limit=limit)]
    emit(rows, as_json, ["id", "at", "actor", "action", "subject", "details"])
