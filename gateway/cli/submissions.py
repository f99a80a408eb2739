"""`submissions list`: stored reports, every revision."""

from __future__ import annotations

import re

import click

from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.views import emit, submission_row
from store.db import open_session
from store.submission_rows import list_submissions


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
    """List stored submissions, every revision (type 2 counts in the canonical taxonomy)."""
    with open_session(app.engine) as s:
        found = list_submissions(s, team=team, period=period, type=type_, taxonomy=app.taxonomy)
        rows = [submission_row(r) for r in found]
    emit(rows, as_json, ["id", "team", "type", "period", "revision", "message_id"])
