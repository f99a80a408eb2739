"""`teams add`, `list`, `show`, `set-status`, `welcome` and `remove`: the registry's teams."""

from __future__ import annotations

import click

from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.directory import teams_set_ti, teams_sync
from gateway.cli.team_show import print_team, team_details
from gateway.cli.views import emit, say, team_row
from gateway.jobs.welcome import send_welcome
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
    say(
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
    """Show one team: its status, its keys (usable or not, and why), its last submission."""
    with open_session(app.engine) as s:
        row = team_details(app, s, app.registry.team(s, handle))
    if as_json:
        emit(row, as_json=True)
    else:
        print_team(row)


@teams.command("set-status")
@click.argument("handle")
@click.argument("status", type=click.Choice(["listed", "accredited", "certified", "suspended"]))
@pass_app
def teams_set_status(app: App, handle: str, status: str) -> None:
    """Change a team's status (which statuses may submit is policy)."""
    team = app.registry.set_status(handle, status)
    allowed = status in app.config.policy.allowed_statuses
    say(f"team {team.handle} is now {status} ({'may' if allowed else 'may not'} submit)")


@teams.command("welcome")
@click.argument("handle")
@click.option("--resend", is_flag=True, help="Send it again, though it was sent before.")
@pass_app
def teams_welcome(app: App, handle: str, resend: bool) -> None:
    """Mail the team its onboarding letter: intake address, gateway key, how to send."""
    welcome = send_welcome(app, handle, resend=resend)
    if welcome.entry_id is None:
        say(
            f"the welcome mail to {handle} was sent before; `teams welcome {handle} --resend` "
            "sends it again"
        )
        return
    say(
        f"welcome mail queued to {welcome.email} (outbox {welcome.entry_id}), encrypted to "
        f"key {welcome.key_fingerprint}"
    )


@teams.command("remove")
@click.argument("handle")
@pass_app
def teams_remove(app: App, handle: str) -> None:
    """Remove a team that has no submissions, with its keys (e.g. a mistyped one)."""
    removed = app.registry.remove_team(handle)
    keys = f"; its keys {', '.join(removed)} left the registry and the keyring" if removed else ""
    say(f"team {handle} removed{keys}")


teams.add_command(teams_sync)
teams.add_command(teams_set_ti)
