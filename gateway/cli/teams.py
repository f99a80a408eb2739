"""`teams add`, `list`, `show` and `set-status`: the registry's teams."""

from __future__ import annotations

import click

from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.directory import teams_set_ti, teams_sync
from gateway.cli.views import emit, team_row
from store.db import open_session
from store.registry import list_teams


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
    with open_session(app.engine) as s:
        rows = [team_row(s, t) for t in list_teams(s)]
    emit(rows, as_json, ["handle", "status", "email", "country", "keys", "ti", "name"])


@teams.command("show")
@click.argument("handle")
@json_option
@pass_app
def teams_show(app: App, handle: str, as_json: bool) -> None:
    """Show one team, its keys and its last submission."""
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
