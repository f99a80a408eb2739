"""`teams sync` and `teams set-ti`: the registry and the Trusted Introducer directory.

`teams sync --ti FILE|URL|-` reads TI's teams.json, checks all of it, and prints the plan
(`gateway/directory_view.py`); `--apply` carries it out (`keys/directory_sync.py`). A
refused plan (the quarter-of-teams guard) is printed, then the command exits 1 having
changed nothing. `teams set-ti HANDLE NAME` links a team to its directory entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from contract.errors import DirectoryError
from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.directory_source import open_source
from gateway.cli.directory_view import Asked, guard_refusal, print_plan
from gateway.cli.views import say
from keys import directory_sync
from keys.directory import read_directory
from keys.directory_link import set_link
from keys.directory_plan import SyncOptions
from keys.directory_sync import OfferedKeys, SyncResult
from store.db import transaction


@click.command("sync")
@click.option(
    "--ti",
    "source",
    required=True,
    metavar="FILE|URL|-",
    help="TI's directory export (teams.json): a file, an https:// URL, or - for stdin.",
)
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An armored keyring (e.g. TI's members' export): keys to bind where TI lists them.",
)
@click.option("--apply", is_flag=True, help="Make the changes (default: print the plan only).")
@click.option("--suspend-missing", is_flag=True, help="Suspend linked teams TI no longer lists.")
@click.option("--update-contacts", is_flag=True, help="Take contact addresses from TI.")
@click.option("--force", is_flag=True, help="Apply even if over a quarter of teams are lowered.")
@json_option
@pass_app
def teams_sync(
    app: App,
    source: str,
    keys_file: Path | None,
    apply: bool,
    suspend_missing: bool,
    update_contacts: bool,
    force: bool,
    as_json: bool,
) -> None:
    """The registry from the Trusted Introducer directory: a plan, or with --apply, done."""
    cap = app.config.registry.ti_max_bytes
    with open_source(source, cap, stdin=sys.stdin.buffer) as stream:
        directory = read_directory(stream, source=source, max_bytes=cap)
    options = SyncOptions(suspend_missing, update_contacts, force)
    data = keys_file.read_bytes() if keys_file else None
    with OfferedKeys.open(data, str(keys_file)) as offered:
        if apply:
            result = directory_sync.apply(app.registry, directory, offered, options, app.clock())
        else:
            made = directory_sync.plan(app.registry, directory, offered, options)
            result = SyncResult(made, applied=False)
    keys = str(keys_file) if keys_file else None
    print_plan(result, Asked(source, keys, apply, options, len(directory.entries)), as_json)
    if apply and not result.applied:
        raise DirectoryError("nothing changed: " + guard_refusal(result.plan))


@click.command("set-ti")
@click.argument("handle")
@click.argument("name", required=False)
@click.option("--none", "unlink", is_flag=True, help="Remove the team's link instead.")
@pass_app
def teams_set_ti(app: App, handle: str, name: str | None, unlink: bool) -> None:
    """Link team HANDLE to the TI directory entry with short name NAME."""
    if (name is None) != unlink:
        raise click.UsageError("give the TI short name NAME, or --none to remove the link")
    with transaction(app.engine) as s:
        team = app.registry.team(s, handle)
        stored = set_link(s, app.registry.actor, team, name)
    if stored is None:
        say(f"team {handle} is linked to no TI entry; `teams sync` leaves it alone")
    else:
        say(
            f"team {handle} is linked to TI entry {stored!r}; next: "
            "clearinghouse teams sync --ti teams.json"
        )
